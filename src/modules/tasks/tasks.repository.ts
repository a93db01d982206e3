import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AppConfig } from '../../config/app-config.js';
import { prepared } from '../../database/prepared.js';
import { backoffSql } from './backoff.js';
import type { EventLevel, NewTask, TaskRow, TaskState } from './task.types.js';

/** An event row written in the same statement as the state change it records. */
export interface EventSpec {
  type: string;
  message: string;
  level?: EventLevel;
  data?: unknown;
}

/** The guards of a compare-and-set beyond the expected states. */
export interface HolderGuard {
  attempt?: number;
  workerId?: string;
  /** Only while retry_count < max_retries (manual retry without force). */
  belowRetryLimit?: boolean;
  /** Only tasks that may go to the queue (not created to await a plugin). */
  dispatchable?: boolean;
}

/** What a plugin callback did: applied (the row), a repeated delivery, or nothing (the task does not await it). */
export type PluginSettlement = { row: TaskRow } | { duplicate: true } | { missed: true };

/** Records a delivery in the caller's transaction; false when it was recorded before (a repeat). */
export type DeliveryClaim = (tx: EntityManager) => Promise<boolean>;

/** Thrown inside a transaction to roll it back when the compare-and-set found nothing to change. */
class Missed extends Error {}

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

/** A jsonb parameter: SQL NULL for null/undefined (as jsonb_to_recordset gives), else the JSON text. */
const jsonOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : JSON.stringify(value);

/** Postgres LIKE metacharacters in a user-supplied prefix. */
const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * All SQL over `tasks` and `task_events`. Each state change is one statement: a
 * compare-and-set UPDATE (`WHERE id AND status = ANY(expected) [AND attempt] [AND holder]`)
 * chained with the INSERT of its event, so both commit together or not at all.
 */
@Injectable()
export class TasksRepository {
  constructor(
    private readonly db: DataSource,
    private readonly config: AppConfig,
  ) {}

  /** Read at use: RETRY_BACKOFF_BASE_MS and RETRY_BACKOFF_CAP_MS are hot settings (/v1/config). */
  private get backoff(): string {
    return backoffSql('t.retry_count', this.config.RETRY_BACKOFF_BASE_MS, this.config.RETRY_BACKOFF_CAP_MS);
  }

  /**
   * Inserts many tasks in one statement (ids are made by the caller). Rows whose
   * idempotency key already exists are skipped; the caller resolves them with findByIdempotencyKeys.
   */
  async insertMany(tasks: NewTask[]): Promise<TaskRow[]> {
    return prepared<TaskRow>(
      this.db,
      'tasks_insert_many',
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
           id uuid, type text, prompt text, data jsonb, priority smallint, tags text[], required_tags text[], work_directory text,
           environment text, files jsonb, target_node_id text, max_retries int, timeout_seconds int,
           run_at timestamptz, metadata jsonb, idempotency_key text)
       ), ins AS (
         INSERT INTO tasks (id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                            target_node_id, max_retries, timeout_seconds, run_at, metadata, idempotency_key)
         SELECT id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                target_node_id, max_retries, timeout_seconds, COALESCE(run_at, now()), metadata, idempotency_key
         FROM input
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING -- tenants (issue 15): keys per tenant
         RETURNING *
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt)
         SELECT id, 'created', 'Task created', 0 FROM ins
       )
       SELECT * FROM ins`,
      [JSON.stringify(tasks)],
    );
  }

  /**
   * Inserts one task that awaits a plugin: straight to running, held by `holder`, attempt 1,
   * leased for its timeout (never pending, so never dispatched). Off the batched intake path.
   * Undefined when its idempotency key already exists.
   */
  async insertAwaiting(task: NewTask, plugin: string, holder: string): Promise<TaskRow | undefined> {
    const rows: TaskRow[] = await this.db.query(
      `WITH ins AS (
         INSERT INTO tasks (id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                            target_node_id, max_retries, timeout_seconds, run_at, metadata, idempotency_key,
                            awaits_callback, status, worker_id, attempt, dispatched_at, started_at, lease_expires_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::int, now(), $14::jsonb, $15,
                 $16::text, 'running', $17, 1, now(), now(), now() + make_interval(secs => $13::int))
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING -- tenants (issue 15): keys per tenant
         RETURNING *
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data)
         SELECT id, 'created', 'Task created', 0, NULL FROM ins
         UNION ALL
         SELECT id, 'awaiting_plugin', 'Awaiting the callback of plugin ' || $16, 1, jsonb_build_object('plugin', $16::text) FROM ins
       )
       SELECT * FROM ins`,
      [
        task.id,
        task.type,
        task.prompt,
        jsonOrNull(task.data),
        task.priority,
        task.tags,
        task.required_tags,
        task.work_directory,
        task.environment,
        jsonOrNull(task.files),
        task.target_node_id,
        task.max_retries,
        task.timeout_seconds,
        JSON.stringify(task.metadata),
        task.idempotency_key,
        plugin,
        holder,
      ],
    );
    return rows[0];
  }

  /** Refreshes the planner's statistics of `tasks` (row counts, value distributions). */
  async analyze(): Promise<void> {
    // tenants (issue 15): taskhub_app may not ANALYZE; for this one statement the session's own user does.
    await this.db.transaction(async (tx) => {
      await tx.query('SET LOCAL ROLE NONE');
      await tx.query('ANALYZE tasks');
    });
  }

  async findByIdempotencyKeys(keys: string[]): Promise<TaskRow[]> {
    // tenants (issue 15): keys are per tenant; the tenant an insert from this context goes to.
    return this.db.query(
      `SELECT * FROM tasks WHERE idempotency_key = ANY($1::text[]) AND tenant_id = taskhub_current_tenant_for_insert()`,
      [keys],
    );
  }

  /** The finished tasks among `ids` (one query for every waiter of this process). */
  async findFinished(ids: string[]): Promise<TaskRow[]> {
    return this.db.query(
      `SELECT * FROM tasks WHERE id = ANY($1::uuid[]) AND status IN ('completed', 'failed', 'cancelled', 'timed_out')`,
      [ids],
    );
  }

  async findById(id: string): Promise<TaskRow | undefined> {
    const rows: TaskRow[] = await this.db.query(`SELECT * FROM tasks WHERE id = $1`, [id]);
    return rows[0];
  }

  /** Appends an event that changes no state (e.g. a rejected stale report). */
  async appendEvent(taskId: string, attempt: number, event: EventSpec): Promise<void> {
    await this.db.query(
      `INSERT INTO task_events (task_id, type, level, message, attempt, data) VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        taskId,
        event.type,
        event.level ?? 'info',
        event.message,
        attempt,
        event.data === undefined ? null : JSON.stringify(event.data),
      ],
    );
  }

  /**
   * The one compare-and-set every transition goes through. `set` is a SQL SET list over
   * alias `t`; its values are `$n` placeholders numbered after the guard parameters, given in `values`.
   * Returns the updated row, or undefined when the row was not in an expected state or the guard failed.
   * `tx`: run inside that open transaction.
   */
  async compareAndSet(
    id: string,
    expected: readonly TaskState[],
    guard: HolderGuard,
    set: (param: (value: unknown) => string) => string,
    event: EventSpec,
    tx?: EntityManager,
  ): Promise<TaskRow | undefined> {
    const params: unknown[] = [id, expected];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    const conditions = [`t.id = $1`, `t.status = ANY($2::text[])`];
    if (guard.attempt !== undefined) conditions.push(`t.attempt = ${param(guard.attempt)}`);
    if (guard.workerId !== undefined) {
      const p = param(guard.workerId);
      conditions.push(`(t.worker_id = ${p} OR t.node_id = ${p})`);
    }
    if (guard.belowRetryLimit) conditions.push(`t.retry_count < t.max_retries`);
    if (guard.dispatchable) conditions.push(`t.awaits_callback IS NULL`);
    const setSql = set(param);
    const ev = [
      param(event.type),
      param(event.level ?? 'info'),
      param(event.message),
      param(event.data === undefined ? null : JSON.stringify(event.data)),
    ];
    const rows: TaskRow[] = await (tx ?? this.db).query(
      `WITH u AS (
         UPDATE tasks t SET ${setSql}, updated_at = now()
         WHERE ${conditions.join(' AND ')}
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, ${ev[0]}, ${ev[1]}, ${ev[2]}, attempt, ${ev[3]}::jsonb FROM u
       )
       SELECT * FROM u`,
      params,
    );
    return rows[0];
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
         UPDATE tasks t SET status = 'completed', result = x.result, error = NULL, progress = 100, completed_at = now(),
           started_at = COALESCE(t.started_at, now()), lease_expires_at = NULL, updated_at = now()
         FROM input x
         WHERE t.id = x.id AND t.status IN ('dispatched', 'running')
           AND (x.attempt IS NULL OR t.attempt = x.attempt)
           AND (x.holder IS NULL OR t.worker_id = x.holder OR t.node_id = x.holder)
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT u.id, 'completed', 'info', 'Task completed', u.attempt, jsonb_build_object('duration', x.duration)
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
         WHERE t.status = 'dispatched' AND t.node_id = x.node_id AND t.attempt = x.attempt
         ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET status = 'running', started_at = COALESCE(t.started_at, now()), updated_at = now()
         FROM c WHERE t.id = c.id AND t.status = 'dispatched'
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, 'started', 'info', 'Acknowledged by node ' || node_id, attempt, jsonb_build_object('node_id', node_id) FROM u
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
         WHERE t.node_id = $1 AND t.id = ANY($2::uuid[]) AND t.status IN ('dispatched', 'running')
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, 'redelivered', 'info', 'Sent again to node ' || node_id || ' (it registered again)', attempt, jsonb_build_object('node_id', node_id) FROM u
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
         SELECT t.id, n.vocabulary FROM tasks t JOIN nodes n ON n.id = t.node_id
         WHERE t.status = 'dispatched' AND t.delivery_count = 1 AND t.delivered_at < now() - make_interval(secs => $1)
           AND n.acks AND n.status = 'online'
         ORDER BY t.delivered_at LIMIT $2
         FOR UPDATE OF t SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET delivery_count = 2, delivered_at = now(), updated_at = now()
         FROM due WHERE t.id = due.id AND t.status = 'dispatched'
         RETURNING t.*, due.vocabulary
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, 'redelivered', 'warn', 'No acknowledgement from node ' || node_id || '; sent again', attempt, jsonb_build_object('node_id', node_id) FROM u
       )
       SELECT * FROM u`,
      [timeoutSeconds, limit],
    );
  }

  /**
   * SET fragment: on failure, back to pending while retries remain (after the backoff unless
   * `immediately`), else `finalState`. A re-queued task has no holder: worker and node are
   * cleared (the error keeps who held it), so a later cancel is not sent to a stale node.
   * A task created to await a plugin is never queued: its retry re-arms the wait instead
   * (still running, same plugin holder, a new attempt, a fresh lease of timeout_seconds).
   */
  retryOrFinishSql(finalState: 'failed' | 'timed_out', immediately = false): string {
    const retry = `t.retry_count < t.max_retries`;
    const rearm = `${retry} AND t.awaits_callback IS NOT NULL`;
    const requeue = `${retry} AND t.awaits_callback IS NULL`;
    return `status = CASE WHEN ${rearm} THEN 'running' WHEN ${retry} THEN 'pending' ELSE '${finalState}' END,
      run_at = CASE WHEN ${requeue} THEN now() ${immediately ? '' : `+ ${this.backoff}`} ELSE t.run_at END,
      completed_at = CASE WHEN ${retry} THEN NULL ELSE now() END,
      retry_count = CASE WHEN ${retry} THEN t.retry_count + 1 ELSE t.retry_count END,
      last_retry_at = CASE WHEN ${retry} THEN now() ELSE t.last_retry_at END,
      worker_id = CASE WHEN ${requeue} THEN NULL ELSE t.worker_id END,
      node_id = CASE WHEN ${requeue} THEN NULL ELSE t.node_id END,
      attempt = CASE WHEN ${rearm} THEN t.attempt + 1 ELSE t.attempt END,
      lease_expires_at = CASE WHEN ${rearm} THEN now() + make_interval(secs => t.timeout_seconds) ELSE NULL END`;
  }

  /**
   * A plugin's callback for a task it holds, in one transaction: `claim` records the delivery
   * first (a repeated webhook-id waits on the first one's row, then answers duplicate), then
   * the compare-and-set from running under `holder`. When that finds nothing, the delivery is
   * rolled back too, so the same webhook-id may be tried again.
   */
  async settleForPlugin(
    id: string,
    holder: string,
    set: (param: (value: unknown) => string) => string,
    event: EventSpec,
    claim?: DeliveryClaim,
  ): Promise<PluginSettlement> {
    try {
      return await this.db.transaction(async (tx): Promise<PluginSettlement> => {
        if (claim && !(await claim(tx))) return { duplicate: true };
        const row = await this.compareAndSet(id, ['running'], { workerId: holder }, set, event, tx);
        if (!row) throw new Missed();
        return { row };
      });
    } catch (e) {
      if (e instanceof Missed) return { missed: true };
      throw e;
    }
  }

  /**
   * Claims the best ready task for a pull worker: highest priority, then oldest, whose
   * work_directory is `workPath` or below it. SKIP LOCKED lets concurrent callers take
   * different rows instead of queueing on one.
   */
  async claimNext(workerId: string, workPath: string | undefined, maxActive = 0): Promise<TaskRow | undefined> {
    const params: unknown[] = [workerId, maxActive];
    let pathSql = '';
    if (workPath !== undefined) {
      const base = workPath.replace(/\/+$/, '');
      params.push(base, `${escapeLike(base)}/%`);
      pathSql = `AND (work_directory = $3 OR work_directory LIKE $4)`;
    }
    const rows: TaskRow[] = await this.db.query(
      `WITH c AS (
         SELECT id FROM tasks
         WHERE status = 'pending' AND run_at <= now()
           AND (target_node_id IS NULL OR target_node_id = $1) ${pathSql}
           -- TASK_MAX_ACTIVE (0 = none): no claim while the hub already has that many tasks out.
           AND ($2::int = 0 OR (SELECT count(*) FROM tasks WHERE status IN ('dispatched', 'running')) < $2::int)
         ORDER BY priority DESC, created_at, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${this.claimSetSql('$1')}, updated_at = now()
         FROM c WHERE t.id = c.id
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data)
         SELECT id, 'claimed', 'Claimed by worker ' || $1, attempt, jsonb_build_object('worker_id', $1::text) FROM u
       )
       SELECT * FROM u`,
      params,
    );
    return rows[0];
  }

  /** SET fragment for handing a task to a pull worker: a new attempt, running, leased for its timeout. */
  claimSetSql(workerParam: string): string {
    return `status = 'running', worker_id = ${workerParam}, node_id = NULL, attempt = t.attempt + 1,
      dispatched_at = now(), started_at = now(), completed_at = NULL, progress = 0, progress_message = NULL,
      lease_expires_at = now() + make_interval(secs => t.timeout_seconds)`;
  }

  /**
   * Moves held tasks whose lease ran out back to pending (with backoff) or to timed_out,
   * up to `limit` at a time. SKIP LOCKED lets several hub processes sweep side by side.
   */
  async sweepExpiredLeases(limit: number): Promise<TaskRow[]> {
    return this.db.query(
      `WITH expired AS (
         SELECT id FROM tasks
         WHERE status IN ('dispatched', 'running') AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${this.retryOrFinishSql('timed_out')},
           error = jsonb_build_object('code', 'LEASE_EXPIRED', 'message', 'The holder did not finish or renew its lease in time',
                                      'worker_id', t.worker_id, 'node_id', t.node_id, 'attempt', t.attempt),
           updated_at = now()
         FROM expired e WHERE t.id = e.id
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, 'lease_expired', 'warn',
                CASE WHEN status = 'pending' THEN 'Lease expired; re-queued for retry ' || retry_count
                     WHEN status = 'running' THEN 'Lease expired; waiting again for plugin ' || awaits_callback || ' (retry ' || retry_count || ')'
                     ELSE 'Lease expired; no retries left' END,
                attempt, jsonb_build_object('status', status) FROM u
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
      `t.status = 'dispatched' AND t.delivery_count >= 2 AND t.delivered_at < now() - make_interval(secs => $1)
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
         WHERE t.status IN ('dispatched', 'running') AND ${condition}
         FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE tasks t SET ${this.retryOrFinishSql('failed', true)},
           error = jsonb_build_object('code', 'NODE_LOST', 'message', $${n + 1}::text, 'node_id', t.node_id, 'attempt', t.attempt),
           updated_at = now()
         FROM lost WHERE t.id = lost.id
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, level, message, attempt, data)
         SELECT id, 'node_lost', 'warn',
                CASE WHEN status = 'pending' THEN $${n + 1}::text || '; re-queued for retry ' || retry_count
                     ELSE $${n + 1}::text || '; no retries left' END,
                attempt, jsonb_build_object('node_id', error->>'node_id', 'status', status) FROM u
       )
       SELECT * FROM u`,
      [...params, message],
    );
  }

  async heldBy(nodeId: string): Promise<TaskRow[]> {
    return this.db.query(
      `SELECT * FROM tasks WHERE node_id = $1 AND status IN ('dispatched', 'running') ORDER BY dispatched_at`,
      [nodeId],
    );
  }
}
