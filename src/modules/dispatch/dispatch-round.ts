import { Injectable } from '@nestjs/common';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import { type AssignmentRef, TaskAssignmentsRepository } from '../tasks/task-assignments.repository.js';
import type { TaskRow } from '../tasks/task.types.js';
import { type Candidate, planAssignments, type Strategy } from './assignment.js';

export type { AssignmentRef };

/** The task fields routing rules can test (`task.type`, `task.priority`, `task.tags`, `task.metadata.*`). */
export interface RoutableTask {
  /** Its tenant: only that tenant's rules route it. */
  tenant_id: string;
  type: string;
  priority: number;
  tags: string[];
  metadata: Record<string, unknown>;
}

export interface Assigned {
  task: TaskRow;
  vocabulary: NodeVocabulary;
}

/**
 * The assignment statement failed at a point where it may have committed (the connection
 * died before its answer came): these rows may be dispatched in the database without anyone told.
 */
export class UncertainAssignment extends Error {
  constructor(
    readonly rows: AssignmentRef[],
    readonly cause: unknown,
  ) {
    super(`dispatch round of ${rows.length} task(s) may or may not have committed`);
  }
}

/**
 * A dispatch round: read the nodes with room and the ready tasks, plan in memory, then one
 * statement locks those nodes (SKIP LOCKED, so two hub processes never hand out the same slot)
 * and recounts their load, claims the tasks still pending (SKIP LOCKED), and records every
 * assignment with its event — committed together before anything is sent. The statements are
 * the tasks module's (TaskAssignmentsRepository); the planning is this module's.
 */
@Injectable()
export class DispatchRound {
  constructor(private readonly assignments: TaskAssignmentsRepository) {}

  /**
   * @param probe check the ready index first (rounds woken by a freed slot usually find nothing;
   *   rounds woken by new tasks skip it).
   */
  async assignBatch(
    maxTasks: number,
    strategy: Strategy,
    cursor: number,
    probe = true,
    route: (task: RoutableTask) => Candidate['route'] | undefined = () => undefined,
  ): Promise<{ assigned: Assigned[]; cursor: number; short: boolean }> {
    if (probe && !(await this.assignments.anyReady())) return { assigned: [], cursor, short: false };
    // 1. Read, without locks: the nodes with room and the ready tasks they could take.
    const { nodes, tasks } = await this.assignments.candidates(maxTasks);
    if (tasks.length === 0) return { assigned: [], cursor, short: false };
    const candidates: (Candidate & (typeof tasks)[number])[] = tasks;
    for (const t of candidates) t.route = route(t);
    const plan = planAssignments(candidates, nodes, strategy, cursor);
    if (plan.assignments.length === 0) return { assigned: [], cursor: plan.cursor, short: false };
    const planned = plan.assignments.slice(0, maxTasks);
    // Each assignment's place among its node's (1, 2, …): the write checks it against the room left.
    const seen = new Map<string, number>();
    const numbered = planned.map((a) => {
      const seq = (seen.get(a.node_id) ?? 0) + 1;
      seen.set(a.node_id, seq);
      return { ...a, seq };
    });
    // 2. Write, in one statement (its own transaction, with its events). One round trip here
    // instead of four (begin, pick, assign, commit) under the previous explicit transaction.
    let rows: TaskRow[];
    try {
      rows = await this.assignments.assignToNodes(numbered);
    } catch (e) {
      // The statement may have committed before its answer was lost (connection cut).
      const byId = new Map(tasks.map((t) => [t.id, t]));
      throw new UncertainAssignment(
        planned.map((a) => ({ id: a.id, node_id: a.node_id, attempt: (byId.get(a.id)?.attempt ?? 0) + 1 })),
        e,
      );
    }
    const vocabulary = new Map(nodes.map((n) => [n.id, n.vocabulary]));
    return {
      assigned: rows.map((task) => ({ task, vocabulary: vocabulary.get(task.node_id as string) ?? 'device' })),
      cursor: plan.cursor,
      short: rows.length < planned.length,
    };
  }

  /**
   * Of assignments whose commit was uncertain, those that did commit (still dispatched to the
   * same node, same attempt), with the node's vocabulary: they are to be delivered now.
   */
  confirmAssignments(rows: AssignmentRef[]): Promise<Assigned[]> {
    return this.assignments.confirmAssignments(rows);
  }
}
