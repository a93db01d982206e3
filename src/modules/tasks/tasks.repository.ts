import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { prepared } from '../../database/prepared.js';
import { HELD_STATES, S, sqlStates, TERMINAL_STATES } from './task-state.js';
import { type EventSpec, lit } from './task-transitions.repository.js';
import type { NewTask, TaskRow } from './task.types.js';

/** A jsonb parameter: SQL NULL for null/undefined (as jsonb_to_recordset gives), else the JSON text. */
const jsonOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : JSON.stringify(value);

/**
 * Inserts and reads of `tasks` and `task_events` (transitions: TaskTransitionsRepository for
 * one task, TaskBatchesRepository for many). Other modules read tasks through here.
 */
@Injectable()
export class TasksRepository {
  constructor(private readonly db: DataSource) {}

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
           run_at timestamptz, metadata jsonb, idempotency_key text, traceparent text, tracestate text,
           concurrency_key text)
       ), ins AS (
         INSERT INTO tasks (id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                            target_node_id, max_retries, timeout_seconds, run_at, metadata, idempotency_key,
                            traceparent, tracestate, concurrency_key)
         SELECT id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                target_node_id, max_retries, timeout_seconds, COALESCE(run_at, now()), metadata, idempotency_key,
                traceparent, tracestate, concurrency_key
         FROM input
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING -- tenants (issue 15): keys per tenant
         RETURNING *
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, tenant_id)
         SELECT id, 'created', 'Task created', 0, ins.tenant_id FROM ins
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
                            awaits_callback, status, worker_id, attempt, dispatched_at, started_at, lease_expires_at,
                            traceparent, tracestate)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::int, now(), $14::jsonb, $15,
                 $16::text, ${lit(S.running)}, $17, 1, now(), now(), now() + make_interval(secs => $13::int),
                 $18, $19)
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING *
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
         SELECT id, 'created', 'Task created', 0, NULL, ins.tenant_id FROM ins
         UNION ALL
         SELECT id, 'awaiting_plugin', 'Awaiting the callback of plugin ' || $16, 1, jsonb_build_object('plugin', $16::text), ins.tenant_id FROM ins
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
        task.traceparent,
        task.tracestate,
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
      `SELECT * FROM tasks WHERE id = ANY($1::uuid[]) AND status IN (${sqlStates(TERMINAL_STATES)})`,
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

  async heldBy(nodeId: string): Promise<TaskRow[]> {
    return this.db.query(
      `SELECT * FROM tasks WHERE node_id = $1 AND status IN (${sqlStates(HELD_STATES)}) ORDER BY dispatched_at`,
      [nodeId],
    );
  }

  /** Tasks handed out right now (dispatched or running), across the hub (IDX_tasks_lease). */
  async countActive(): Promise<number> {
    const [{ n }]: { n: number }[] = await this.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE status IN (${sqlStates(HELD_STATES)})`,
    );
    return n;
  }

  /** When the next delayed or backed-off task becomes ready (to arm one timer, not poll). */
  async nextRunAt(): Promise<Date | null> {
    const rows: { at: Date | null }[] = await this.db.query(
      `SELECT min(run_at) AS at FROM tasks WHERE status = ${lit(S.pending)} AND run_at > now()`,
    );
    return rows[0].at;
  }
}
