import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import type { TaskRow } from '../tasks/task.types.js';
import { prepared } from '../../database/prepared.js';
import { type Candidate, type NodeSlot, planAssignments, type Strategy } from './assignment.js';

/** The task fields routing rules can test (`task.type`, `task.priority`, `task.tags`, `task.metadata.*`). */
export interface RoutableTask {
  type: string;
  priority: number;
  tags: string[];
  metadata: Record<string, unknown>;
}

export interface Assigned {
  task: TaskRow;
  vocabulary: NodeVocabulary;
}

/** Which assignment may have been written: the task, its node and the attempt it would have. */
export type AssignmentRef = Pick<TaskRow, 'id' | 'node_id' | 'attempt'>;

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
 * assignment with its event — committed together before anything is sent.
 */
@Injectable()
export class DispatchRepository {
  constructor(private readonly db: DataSource) {}

  /** Tasks handed out right now (dispatched or running), across the hub (IDX_tasks_lease). */
  async countActive(): Promise<number> {
    const [{ n }]: { n: number }[] = await this.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE status IN ('dispatched', 'running')`,
    );
    return n;
  }

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
    if (probe) {
      const [{ ready }]: { ready: boolean }[] = await this.db.query(
        `SELECT EXISTS (SELECT 1 FROM tasks WHERE status = 'pending' AND run_at <= now()) AS ready`,
      );
      if (!ready) return { assigned: [], cursor, short: false };
    }
    // 1. Read, without locks: the nodes with room (with their live load) and the ready tasks they
    // could take, looking a little past the free slots so a few ineligible tasks at the head of
    // the queue do not stall the rest.
    const [{ nodes, tasks }] = await prepared<{
      nodes: (NodeSlot & { vocabulary: NodeVocabulary })[];
      tasks: (Candidate & RoutableTask & { attempt: number })[];
    }>(
      this.db,
      'dispatch_candidates',
      `WITH open AS (
         SELECT * FROM (
           SELECT n.id, n.capacity, n.tags, n.capabilities, n.vocabulary,
                  (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN ('dispatched', 'running')) AS running
           FROM nodes n
           WHERE n.status = 'online' AND NOT n.draining ORDER BY n.id
         ) n WHERE running < capacity
       ), c AS (
         SELECT id, type, required_tags, target_node_id, priority, tags, metadata, attempt FROM tasks
         WHERE status = 'pending' AND run_at <= now() AND (target_node_id IS NULL OR target_node_id IN (SELECT id FROM open))
         ORDER BY priority DESC, created_at, id
         LIMIT LEAST($1::int, (SELECT COALESCE(sum(capacity - running), 0)::int * 4 FROM open))
       )
       SELECT (SELECT COALESCE(json_agg(open), '[]'::json) FROM open) AS nodes,
              (SELECT COALESCE(json_agg(c), '[]'::json) FROM c) AS tasks`,
      [maxTasks],
    );
    if (tasks.length === 0) return { assigned: [], cursor, short: false };
    for (const t of tasks) t.route = route(t);
    const plan = planAssignments(tasks, nodes, strategy, cursor);
    if (plan.assignments.length === 0) return { assigned: [], cursor: plan.cursor, short: false };
    const planned = plan.assignments.slice(0, maxTasks);
    // Each assignment's place among its node's (1, 2, …): the write checks it against the room left.
    const seen = new Map<string, number>();
    const numbered = planned.map((a) => {
      const seq = (seen.get(a.node_id) ?? 0) + 1;
      seen.set(a.node_id, seq);
      return { ...a, seq };
    });
    // 2. Write, in one statement (its own transaction, with its events): each node locked and its
    // load counted again, each task claimed only if still pending. Anything locked by someone
    // else right now (another hub's round, a completion) is skipped, never waited for; what
    // is skipped stays pending for the next round. One round trip here instead of four
    // (begin, pick, assign, commit) under the previous explicit transaction.
    let rows: TaskRow[];
    try {
      rows = await prepared<TaskRow>(
        this.db,
        'dispatch_assign',
        `WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS a(id uuid, node_id text, seq int)),
         n AS (
           SELECT n.id, n.capacity,
                  (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN ('dispatched', 'running')) AS running
           FROM nodes n
           WHERE n.id IN (SELECT node_id FROM a) AND n.status = 'online' AND NOT n.draining
           ORDER BY n.id FOR UPDATE OF n SKIP LOCKED
         ), c AS (
           SELECT t.id, a.node_id FROM tasks t JOIN a ON a.id = t.id JOIN n ON n.id = a.node_id
           WHERE t.status = 'pending' AND t.run_at <= now() AND a.seq <= n.capacity - n.running
           ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
         ), u AS (
           UPDATE tasks t SET status = 'dispatched', node_id = c.node_id, worker_id = NULL, attempt = t.attempt + 1,
             dispatched_at = now(), delivered_at = now(), delivery_count = 1,
             started_at = NULL, completed_at = NULL, progress = 0, progress_message = NULL,
             lease_expires_at = now() + make_interval(secs => t.timeout_seconds), updated_at = now()
           FROM c WHERE t.id = c.id AND t.status = 'pending'
           RETURNING t.*
         ), ev AS (
           INSERT INTO task_events (task_id, type, message, attempt, data)
           SELECT id, 'dispatched', 'Dispatched to node ' || node_id, attempt, jsonb_build_object('node_id', node_id) FROM u
         )
         SELECT * FROM u`,
        [JSON.stringify(numbered)],
      );
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
  async confirmAssignments(rows: AssignmentRef[]): Promise<Assigned[]> {
    const found: (TaskRow & { vocabulary: NodeVocabulary })[] = await this.db.query(
      `SELECT t.*, n.vocabulary FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, node_id text, attempt int)
       JOIN tasks t ON t.id = x.id AND t.node_id = x.node_id AND t.attempt = x.attempt AND t.status = 'dispatched'
       JOIN nodes n ON n.id = t.node_id`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, node_id: r.node_id, attempt: r.attempt })))],
    );
    return found.map(({ vocabulary, ...task }) => ({ task, vocabulary }));
  }

  /** When the next delayed or backed-off task becomes ready (to arm one timer, not poll). */
  async nextRunAt(): Promise<Date | null> {
    const rows: { at: Date | null }[] = await this.db.query(
      `SELECT min(run_at) AS at FROM tasks WHERE status = 'pending' AND run_at > now()`,
    );
    return rows[0].at;
  }
}
