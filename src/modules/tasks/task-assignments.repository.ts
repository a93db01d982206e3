import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import { prepared } from '../../database/prepared.js';
import { HELD_STATES, S, sqlStates } from './task-state.js';
import { ASSIGN, lit } from './task-transitions.repository.js';
import type { TaskRow } from './task.types.js';

/** A node with room, as the dispatcher plans with it. */
export interface OpenNode {
  id: string;
  tenant_id: string;
  capacity: number;
  running: number;
  tags: string[];
  capabilities: string[];
  vocabulary: NodeVocabulary;
}

/** A ready task, with what routing rules and eligibility look at. */
export interface ReadyTask {
  id: string;
  tenant_id: string;
  type: string;
  required_tags: string[];
  target_node_id: string | null;
  priority: number;
  tags: string[];
  metadata: Record<string, unknown>;
  attempt: number;
}

/** One planned assignment: the task, its node and its place among that node's (1, 2, …). */
export interface PlannedAssignment {
  id: string;
  node_id: string;
  seq: number;
}

/** Which assignment may have been written: the task, its node and the attempt it would have. */
export type AssignmentRef = Pick<TaskRow, 'id' | 'node_id' | 'attempt'>;

/**
 * The dispatcher's reads and its pending → dispatched write. They join `nodes` for the live
 * load of each node, which is counted from the tasks it holds, so they live with the tasks.
 */
@Injectable()
export class TaskAssignmentsRepository {
  constructor(private readonly db: DataSource) {}

  /** Whether any task is ready (the ready index; rounds woken by a freed slot usually find none). */
  async anyReady(): Promise<boolean> {
    const [{ ready }]: { ready: boolean }[] = await this.db.query(
      `SELECT EXISTS (SELECT 1 FROM tasks WHERE status = ${lit(S.pending)} AND run_at <= now()) AS ready`,
    );
    return ready;
  }

  /**
   * Read, without locks: the nodes with room (with their live load) and the ready tasks they
   * could take, looking a little past the free slots so a few ineligible tasks at the head of
   * the queue do not stall the rest.
   */
  async candidates(maxTasks: number): Promise<{ nodes: OpenNode[]; tasks: ReadyTask[] }> {
    const [{ nodes, tasks }] = await prepared<{ nodes: OpenNode[]; tasks: ReadyTask[] }>(
      this.db,
      'dispatch_candidates',
      `WITH open AS (
         SELECT * FROM (
           SELECT n.id, n.tenant_id, n.capacity, n.tags, n.capabilities, n.vocabulary,
                  (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN (${sqlStates(HELD_STATES)})) AS running
           FROM nodes n
           WHERE n.status = 'online' AND NOT n.draining ORDER BY n.id
         ) n WHERE running < capacity
       ), c AS (
         SELECT id, tenant_id, type, required_tags, target_node_id, priority, tags, metadata, attempt FROM tasks
         WHERE status = ${lit(ASSIGN.from[0])} AND run_at <= now()
           AND (target_node_id IS NULL OR target_node_id IN (SELECT id FROM open WHERE open.tenant_id = tasks.tenant_id))
         ORDER BY priority DESC, created_at, id
         LIMIT LEAST($1::int, (SELECT COALESCE(sum(capacity - running), 0)::int * 4 FROM open))
       )
       SELECT (SELECT COALESCE(json_agg(open), '[]'::json) FROM open) AS nodes,
              (SELECT COALESCE(json_agg(c), '[]'::json) FROM c) AS tasks`,
      [maxTasks],
    );
    return { nodes, tasks };
  }

  /**
   * The round's assignments, in one statement (its own transaction, with its events): each
   * node locked and its load counted again, each task claimed only if still pending and its
   * node has room for its `seq`. Anything locked by someone else right now (another hub's
   * round, a completion) is skipped, never waited for; what is skipped stays pending for the
   * next round. A task goes only to a node of its own tenant (the dispatcher runs as the
   * system and sees every tenant's rows; the plan matches tenants too).
   */
  async assignToNodes(planned: PlannedAssignment[]): Promise<TaskRow[]> {
    return prepared<TaskRow>(
      this.db,
      'dispatch_assign',
      `WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS a(id uuid, node_id text, seq int)),
       n AS (
         SELECT n.id, n.tenant_id, n.capacity,
                (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN (${sqlStates(HELD_STATES)})) AS running
         FROM nodes n
         WHERE n.id IN (SELECT node_id FROM a) AND n.status = 'online' AND NOT n.draining
         ORDER BY n.id FOR UPDATE OF n SKIP LOCKED
       ), c AS (
         SELECT t.id, a.node_id FROM tasks t JOIN a ON a.id = t.id JOIN n ON n.id = a.node_id AND n.tenant_id = t.tenant_id
         WHERE t.status = ${lit(ASSIGN.from[0])} AND t.run_at <= now() AND a.seq <= n.capacity - n.running
         ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET status = ${lit(ASSIGN.to)}, node_id = c.node_id, worker_id = NULL, attempt = t.attempt + 1,
           dispatched_at = now(), delivered_at = now(), delivery_count = 1,
           started_at = NULL, completed_at = NULL, progress = 0, progress_message = NULL,
           lease_expires_at = now() + make_interval(secs => t.timeout_seconds), updated_at = now()
         FROM c WHERE t.id = c.id AND t.status = ${lit(ASSIGN.from[0])}
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
         SELECT id, 'dispatched', 'Dispatched to node ' || node_id, attempt, jsonb_build_object('node_id', node_id), u.tenant_id FROM u
       )
       SELECT * FROM u`,
      [JSON.stringify(planned)],
    );
  }

  /**
   * Of assignments whose commit was uncertain, those that did commit (still dispatched to the
   * same node, same attempt), with the node's vocabulary: they are to be delivered now.
   */
  async confirmAssignments(rows: AssignmentRef[]): Promise<{ task: TaskRow; vocabulary: NodeVocabulary }[]> {
    const found: (TaskRow & { vocabulary: NodeVocabulary })[] = await this.db.query(
      `SELECT t.*, n.vocabulary FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, node_id text, attempt int)
       JOIN tasks t ON t.id = x.id AND t.node_id = x.node_id AND t.attempt = x.attempt AND t.status = ${lit(ASSIGN.to)}
       JOIN nodes n ON n.id = t.node_id AND n.tenant_id = t.tenant_id`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, node_id: r.node_id, attempt: r.attempt })))],
    );
    return found.map(({ vocabulary, ...task }) => ({ task, vocabulary }));
  }
}
