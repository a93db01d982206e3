import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { prepared } from '../../database/prepared.js';
import { keyCounts, keyRoom } from '../concurrency/concurrency.repository.js';
import { HELD_STATES, S, sqlStates } from './task-state.js';
import type { TaskRow } from './task.types.js';
import {
  CLAIM,
  claimSet,
  COMPLETE,
  completeSet,
  FAIL,
  lit,
  REQUEUE,
  retryOrFinishSet,
  START,
  TaskTransitionsRepository,
  TIME_OUT,
} from './task-transitions.repository.js';

/** A node's acknowledgement of one assignment. */
export interface AckItem {
  id: string;
  node_id: string;
  attempt: number;
}

export interface CompletionItem {
  id: string;
  holder: string | null;
  attempt: number | null;
  result: unknown;
  duration: number | null;
}

/** Postgres LIKE metacharacters in a user-supplied prefix. */
const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * The transitions that touch many tasks in one statement: pull claims, batched acks and
 * completions (group commits on the hot path), re-deliveries, and the recovery sweeps (expired leases, lost
 * nodes, unacknowledged assignments). Each is a compare-and-set per row with its events in the
 * same statement, expected and target states from TRANSITIONS.
 */
/** What a pull worker may take: tasks under `workPath`, needing only `tags`, of `types` (each unset: any). */
export interface PullFilter {
  workPath?: string;
  tags?: string[];
  types?: string[];
}

@Injectable()
export class TaskBatchesRepository {
  constructor(
    private readonly db: DataSource,
    private readonly transitions: TaskTransitionsRepository,
  ) {}

  /**
   * Claims the best ready task for a pull worker: highest priority, then oldest, whose
   * work_directory is `workPath` or below it. SKIP LOCKED lets concurrent callers take
   * different rows instead of queueing on one.
   *
   * Concurrency keys (docs/flow-control.md): a task whose key is held is passed over in the scan
   * (a task without a key costs no lookup); one whose key has a limit row is not claimed by this
   * statement but by claimKeyed, under its key's lock. Tries a few times when that loses its race.
   *
   * `turns` (a global worker, docs/flow-control.md "Fairness"): the tenants in the order their
   * turn comes; the claim takes the best task of the first tenant in that order with one it may
   * take (tenants not named first: they have had no turn yet), and falls back to the best task
   * overall when that tenant's were all taken meanwhile.
   */
  async claimNext(workerId: string, filter: PullFilter, maxActive = 0, turns?: string[]): Promise<TaskRow | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const found =
        (turns && (await this.claimNextOnce(workerId, filter, maxActive, turns))) ||
        (await this.claimNextOnce(workerId, filter, maxActive));
      if (!found?.limited) return found?.row;
      const claimed = await this.claimKeyed(workerId, found.row);
      if (claimed) return claimed;
    }
    return undefined;
  }

  /**
   * Claims the pending task `task` of a limited key for a pull worker if its key has room: the
   * key's limit row is locked first (as the dispatcher's round does), then a new statement counts
   * the key's room with what the previous holder of the lock committed.
   */
  private async claimKeyed(workerId: string, task: TaskRow): Promise<TaskRow | undefined> {
    return this.db.transaction(async (m) => {
      await m.query(`SELECT 1 FROM concurrency_limits WHERE tenant_id = $1 AND key = $2 FOR UPDATE`, [
        task.tenant_id,
        task.concurrency_key,
      ]);
      const rows: TaskRow[] = await m.query(
        `WITH c AS (
           SELECT t.id FROM tasks t
           WHERE t.id = $2 AND t.status = ${lit(CLAIM.from[0])} AND t.run_at <= now()
             AND NOT EXISTS (SELECT 1 FROM concurrency_limits l ${keyCounts('l')}
                             WHERE l.tenant_id = t.tenant_id AND l.key = t.concurrency_key AND ${keyRoom('l')} <= 0)
           FOR UPDATE SKIP LOCKED
         ), u AS (
           UPDATE tasks t SET ${claimSet('$1')}, updated_at = now()
           FROM c WHERE t.id = c.id
           RETURNING t.*
         ), ev AS (
           INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
           SELECT id, 'claimed', 'Claimed by worker ' || $1, attempt, jsonb_build_object('worker_id', $1::text), u.tenant_id FROM u
         )
         SELECT * FROM u`,
        [workerId, task.id],
      );
      return rows[0];
    });
  }

  /** The claim statement: the row it claimed, or the row of a limited key it found first (`limited`). */
  private async claimNextOnce(
    workerId: string,
    filter: PullFilter,
    maxActive: number,
    turns?: string[],
  ): Promise<{ row: TaskRow; limited: boolean } | undefined> {
    const params: unknown[] = [workerId, maxActive];
    let pathSql = '';
    if (filter.workPath !== undefined) {
      const base = filter.workPath.replace(/\/+$/, '');
      params.push(base, `${escapeLike(base)}/%`);
      pathSql = `AND (work_directory = $${params.length - 1} OR work_directory LIKE $${params.length})`;
    }
    // A worker that names its tags takes only tasks whose required tags it has; its types, only those types.
    if (filter.tags !== undefined) {
      params.push(filter.tags);
      pathSql += ` AND required_tags <@ $${params.length}::text[]`;
    }
    if (filter.types !== undefined) {
      params.push(filter.types);
      pathSql += ` AND type = ANY ($${params.length}::text[])`;
    }
    const open = `status = ${lit(CLAIM.from[0])} AND run_at <= now()
           AND (target_node_id IS NULL OR target_node_id = $1) ${pathSql}
           AND (concurrency_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM concurrency_limits l ${keyCounts('l')}
             WHERE l.tenant_id = tasks.tenant_id AND l.key = tasks.concurrency_key AND ${keyRoom('l')} <= 0))`;
    let turn = '';
    let ofTurn = '';
    if (turns) {
      params.push(turns);
      // The tenants in turn order, probed one by one until one has a task for this worker (OFFSET 0
      // keeps the probe above the sort, so it stops at the first).
      turn = `turn AS (
         SELECT tn.id FROM (
           SELECT id FROM tenants ORDER BY COALESCE(array_position($${params.length}::text[], id), 0), id OFFSET 0
         ) tn
         WHERE EXISTS (SELECT 1 FROM tasks WHERE tenant_id = tn.id AND ${open})
         LIMIT 1
       ), `;
      ofTurn = 'AND tenant_id = (SELECT id FROM turn)';
    }
    const rows: (TaskRow & { limited: boolean })[] = await this.db.query(
      `WITH ${turn}c AS (
         SELECT id, concurrency_key IS NOT NULL AND EXISTS (
                  SELECT 1 FROM concurrency_limits l WHERE l.tenant_id = tasks.tenant_id AND l.key = tasks.concurrency_key
                ) AS limited
         FROM tasks
         WHERE ${open} ${ofTurn}
           -- TASK_MAX_ACTIVE (0 = none): no claim while the hub already has that many tasks out.
           AND ($2::int = 0 OR (SELECT count(*) FROM tasks WHERE status IN (${sqlStates(HELD_STATES)})) < $2::int)
         ORDER BY priority DESC, created_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${claimSet('$1')}, updated_at = now()
         FROM c WHERE t.id = c.id AND NOT c.limited
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
         SELECT id, 'claimed', 'Claimed by worker ' || $1, attempt, jsonb_build_object('worker_id', $1::text), u.tenant_id FROM u
       )
       SELECT u.*, false AS limited FROM u
       UNION ALL SELECT t.*, true AS limited FROM tasks t JOIN c ON c.id = t.id WHERE c.limited`,
      params,
    );
    if (!rows[0]) return undefined;
    const { limited, ...row } = rows[0];
    return { row, limited };
  }

  /**
   * Completes many held tasks in one statement, each under its own guard (attempt and holder
   * when given). Returns the rows it completed; an item missing from the answer lost its
   * compare-and-set and is explained by the caller.
   */
  async completeMany(items: CompletionItem[]): Promise<TaskRow[]> {
    return prepared<TaskRow>(
      this.db,
      'tasks_complete_many',
      `WITH input AS (
         SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, holder text, attempt int, result jsonb, duration float8)
       ), u AS (
         UPDATE tasks t SET ${completeSet('x.result')}, updated_at = now()
         FROM input x
         WHERE t.id = x.id AND t.status IN (${sqlStates(COMPLETE.from)})
           AND (x.attempt IS NULL OR t.attempt = x.attempt)
           AND (x.holder IS NULL OR t.worker_id = x.holder OR t.node_id = x.holder)
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT u.id, 'completed', 'info', 'Task completed', u.attempt, jsonb_build_object('duration', x.duration), u.tenant_id
         FROM u JOIN input x ON x.id = u.id
       )
       SELECT * FROM u`,
      [JSON.stringify(items)],
    );
  }

  /**
   * Acknowledged assignments become running, many in one statement, each guarded by node and
   * attempt; the nodes that answered are remembered as acknowledging (their unacknowledged
   * assignments are re-sent, then released, after DISPATCH_ACK_TIMEOUT_MS).
   */
  async startMany(items: AckItem[]): Promise<TaskRow[]> {
    return prepared<TaskRow>(
      this.db,
      'tasks_start_many',
      `WITH input AS (
         SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, node_id text, attempt int)
       ), c AS (
         -- SKIP LOCKED: a row locked right now is being completed or released, which makes its
         -- ack moot; waiting for it would serialize acks behind results (and could deadlock).
         SELECT t.id FROM tasks t JOIN input x ON t.id = x.id
         WHERE t.status = ${lit(START.from[0])} AND t.node_id = x.node_id AND t.attempt = x.attempt
         ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET status = ${lit(START.to)}, started_at = COALESCE(t.started_at, now()), updated_at = now()
         FROM c WHERE t.id = c.id AND t.status = ${lit(START.from[0])}
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, 'started', 'info', 'Acknowledged by node ' || node_id, attempt, jsonb_build_object('node_id', node_id), u.tenant_id FROM u
       ), n AS (
         UPDATE nodes SET acks = true WHERE id IN (SELECT node_id FROM input) AND NOT acks
       )
       SELECT * FROM u`,
      [JSON.stringify(items)],
    );
  }

  /**
   * The node's held tasks among `ids`, marked as delivered again now (same attempt): sent once
   * more when it registers again, and the ack clock restarts.
   */
  async redeliver(nodeId: string, ids: string[]): Promise<TaskRow[]> {
    return this.db.query(
      `WITH u AS (
         UPDATE tasks t SET delivery_count = 1, delivered_at = now(), updated_at = now()
         WHERE t.node_id = $1 AND t.id = ANY($2::uuid[]) AND t.status IN (${sqlStates(HELD_STATES)})
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, 'redelivered', 'info', 'Sent again to node ' || node_id || ' (it registered again)', attempt, jsonb_build_object('node_id', node_id), u.tenant_id FROM u
       )
       SELECT * FROM u ORDER BY dispatched_at`,
      [nodeId, ids],
    );
  }

  /**
   * Assignments to acknowledging, online nodes that got no ack within `timeoutSeconds` after
   * their first delivery: counted as delivered twice and answered, to be sent once more.
   */
  async redeliverUnacked(
    timeoutSeconds: number,
    limit: number,
  ): Promise<(TaskRow & { vocabulary: 'device' | 'node' })[]> {
    return this.db.query(
      `WITH due AS (
         SELECT t.id, n.vocabulary FROM tasks t JOIN nodes n ON n.id = t.node_id AND (n.shared OR n.tenant_id = t.tenant_id)
         WHERE t.status = ${lit(S.dispatched)} AND t.delivery_count = 1 AND t.delivered_at < now() - make_interval(secs => $1)
           AND n.acks AND n.status = 'online'
         ORDER BY t.delivered_at LIMIT $2
         FOR UPDATE OF t SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET delivery_count = 2, delivered_at = now(), updated_at = now()
         FROM due WHERE t.id = due.id AND t.status = ${lit(S.dispatched)}
         RETURNING t.*, due.vocabulary
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, 'redelivered', 'warn', 'No acknowledgement from node ' || node_id || '; sent again', attempt, jsonb_build_object('node_id', node_id), u.tenant_id FROM u
       )
       SELECT * FROM u`,
      [timeoutSeconds, limit],
    );
  }

  /**
   * Moves held tasks whose lease ran out back to pending (with backoff) or to timed_out,
   * up to `limit` at a time. SKIP LOCKED lets several hub processes sweep side by side.
   */
  async sweepExpiredLeases(limit: number): Promise<TaskRow[]> {
    return this.db.query(
      `WITH expired AS (
         SELECT id FROM tasks
         WHERE status IN (${sqlStates(HELD_STATES)}) AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${retryOrFinishSet(TIME_OUT, this.transitions.backoff)},
           error = jsonb_build_object('code', 'LEASE_EXPIRED', 'message', 'The holder did not finish or renew its lease in time',
                                      'worker_id', t.worker_id, 'node_id', t.node_id, 'attempt', t.attempt),
           updated_at = now()
         FROM expired e WHERE t.id = e.id
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, 'lease_expired', 'warn',
                CASE WHEN status = ${lit(REQUEUE.to)} THEN 'Lease expired; re-queued for retry ' || retry_count
                     WHEN status = ${lit(S.running)} THEN 'Lease expired; waiting again for plugin ' || awaits_callback || ' (retry ' || retry_count || ')'
                     ELSE 'Lease expired; no retries left' END,
                attempt, jsonb_build_object('status', status), u.tenant_id FROM u
       )
       SELECT * FROM u`,
      [limit],
    );
  }

  /**
   * Held tasks of nodes that are gone: offline (socket closed, or their hub process vanished)
   * past the reconnect grace. The retry policy counts the attempt (pending, or failed when out
   * of retries) but there is no backoff: losing a node says nothing about the task itself.
   */
  async releaseLostNodeTasks(graceSeconds: number): Promise<TaskRow[]> {
    return this.releaseWhere(
      `t.node_id IN (SELECT id FROM nodes WHERE status = 'offline' AND disconnected_at < now() - make_interval(secs => $1))`,
      [graceSeconds],
      'The node holding it went offline',
    );
  }

  /** Assignments still unacknowledged after the re-send: given back for another node. */
  async releaseUnacked(timeoutSeconds: number): Promise<TaskRow[]> {
    return this.releaseWhere(
      `t.status = ${lit(S.dispatched)} AND t.delivery_count >= 2 AND t.delivered_at < now() - make_interval(secs => $1)
       AND t.node_id IN (SELECT id FROM nodes WHERE acks)`,
      [timeoutSeconds],
      'The node did not acknowledge the assignment',
    );
  }

  async releaseNodeTasks(nodeId: string): Promise<TaskRow[]> {
    return this.releaseWhere(`t.node_id = $1`, [nodeId], 'The node holding it was removed');
  }

  private async releaseWhere(condition: string, params: unknown[], message: string): Promise<TaskRow[]> {
    const n = params.length;
    return this.db.query(
      `WITH lost AS (
         SELECT t.id FROM tasks t
         WHERE t.status IN (${sqlStates(HELD_STATES)}) AND ${condition}
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${retryOrFinishSet(FAIL, this.transitions.backoff, true)},
           error = jsonb_build_object('code', 'NODE_LOST', 'message', $${n + 1}::text, 'node_id', t.node_id, 'attempt', t.attempt),
           updated_at = now()
         FROM lost WHERE t.id = lost.id
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, 'node_lost', 'warn',
                CASE WHEN status = ${lit(REQUEUE.to)} THEN $${n + 1}::text || '; re-queued for retry ' || retry_count
                     ELSE $${n + 1}::text || '; no retries left' END,
                attempt, jsonb_build_object('node_id', error->>'node_id', 'status', status), u.tenant_id FROM u
       )
       SELECT * FROM u`,
      [...params, message],
    );
  }
}
