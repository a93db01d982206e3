import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AppConfig } from '../../config/app-config.js';
import { backoffSql } from './backoff.js';
import { HELD_STATES, S, TERMINAL_STATES, transition } from './task-state.js';
import type { EventLevel, PluginOutcome, TaskRow, TaskState } from './task.types.js';

/** An event row written in the same statement as the state change it records. */
export interface EventSpec {
  type: string;
  message: string;
  level?: EventLevel;
  data?: unknown;
}

/** Who reports on a held task: the attempt it was given and its id (worker or node), when known. */
export interface HolderGuard {
  attempt?: number;
  workerId?: string;
}

/** What a plugin callback did: applied (the row), a repeated delivery, or nothing (the task does not await it). */
export type PluginSettlement = { row: TaskRow } | { duplicate: true } | { missed: true };

/** Records a delivery in the caller's transaction; false when it was recorded before (a repeat). */
export type DeliveryClaim = (tx: EntityManager) => Promise<boolean>;

/** Thrown inside a transaction to roll it back when the compare-and-set found nothing to change. */
class Missed extends Error {}

/** A SQL string literal for a state taken from the typed table (never typed by hand). */
export const lit = (state: TaskState): string => `'${state}'`;

// The transitions written here and in TaskBatchesRepository, each checked against TRANSITIONS.
export const CLAIM = transition(S.running, [S.pending]);
export const ASSIGN = transition(S.dispatched, [S.pending]);
export const START = transition(S.running, [S.dispatched]);
export const COMPLETE = transition(S.completed, HELD_STATES);
export const FAIL = transition(S.failed, HELD_STATES);
export const TIME_OUT = transition(S.timed_out, HELD_STATES);
export const REQUEUE = transition(S.pending, HELD_STATES);
export const CANCEL = transition(S.cancelled, [S.pending, S.dispatched, S.running]);
export const RETRY = transition(S.pending, TERMINAL_STATES);
/** Reports that mean the holder is working: dispatched → running, or it stays running. */
const RUNNING = { from: [...START.from, S.running], to: START.to } as const;

/** SET fragment for handing a task to a pull worker: a new attempt, running, leased for its timeout. */
export function claimSet(workerParam: string): string {
  return `status = ${lit(CLAIM.to)}, worker_id = ${workerParam}, node_id = NULL, attempt = t.attempt + 1,
    dispatched_at = now(), started_at = now(), completed_at = NULL, progress = 0, progress_message = NULL,
    lease_expires_at = now() + make_interval(secs => t.timeout_seconds)`;
}

/** SET fragment of every completion (single, batched, by a plugin): `resultSql` is a jsonb expression. */
export function completeSet(resultSql: string): string {
  return `status = ${lit(COMPLETE.to)}, result = ${resultSql}, error = NULL, progress = 100, completed_at = now(),
    started_at = COALESCE(t.started_at, now()), lease_expires_at = NULL`;
}

/**
 * SET fragment: on failure, back to pending while retries remain (after the backoff unless
 * `immediately`), else `finalState`. A re-queued task has no holder: worker and node are
 * cleared (the error keeps who held it), so a later cancel is not sent to a stale node.
 * A task created to await a plugin is never queued: its retry re-arms the wait instead
 * (it stays running, same plugin holder, a new attempt, a fresh lease of timeout_seconds).
 */
export function retryOrFinishSet(final: typeof FAIL | typeof TIME_OUT, backoff: string, immediately = false): string {
  const retry = `t.retry_count < t.max_retries`;
  const rearm = `${retry} AND t.awaits_callback IS NOT NULL`;
  const requeue = `${retry} AND t.awaits_callback IS NULL`;
  return `status = CASE WHEN ${rearm} THEN ${lit(S.running)} WHEN ${retry} THEN ${lit(REQUEUE.to)} ELSE ${lit(final.to)} END,
    run_at = CASE WHEN ${requeue} THEN now() ${immediately ? '' : `+ ${backoff}`} ELSE t.run_at END,
    completed_at = CASE WHEN ${retry} THEN NULL ELSE now() END,
    retry_count = CASE WHEN ${retry} THEN t.retry_count + 1 ELSE t.retry_count END,
    last_retry_at = CASE WHEN ${retry} THEN now() ELSE t.last_retry_at END,
    worker_id = CASE WHEN ${requeue} THEN NULL ELSE t.worker_id END,
    node_id = CASE WHEN ${requeue} THEN NULL ELSE t.node_id END,
    attempt = CASE WHEN ${rearm} THEN t.attempt + 1 ELSE t.attempt END,
    lease_expires_at = CASE WHEN ${rearm} THEN now() + make_interval(secs => t.timeout_seconds) ELSE NULL END`;
}

/** SET fragment of a manual re-queue (retry, reply): a fresh start, nothing of the last run kept. */
const requeueSet = `status = ${lit(RETRY.to)}, run_at = now(), last_retry_at = now(), worker_id = NULL, node_id = NULL,
  lease_expires_at = NULL, progress = 0, progress_message = NULL, result = NULL, error = NULL,
  completed_at = NULL, cancelled_at = NULL, cancel_reason = NULL, dispatched_at = NULL, started_at = NULL`;

/** Extra conditions of a compare-and-set beyond the expected states. */
interface Conditions extends HolderGuard {
  /** Only while retry_count < max_retries (manual retry without force). */
  belowRetryLimit?: boolean;
  /** Only tasks that may go to the queue (not created to await a plugin). */
  dispatchable?: boolean;
  /**
   * Only tasks this plugin may settle: running under its holder (`plugin:<name>`: created to
   * await it, or handed to it by a node's `pending`), or held by a node while the task's
   * metadata names the plugin (the callback path its `task_assign` gave; names match
   * case-insensitively, as plugin names do).
   */
  pluginHeld?: { plugin: string; holder: string };
}

type Param = (value: unknown) => string;

/**
 * The single-row transitions of a task, one named method each. Each is one compare-and-set
 * UPDATE (`WHERE id AND status = ANY(from) [AND attempt] [AND holder]`) chained with the
 * INSERT of its event, so both commit together or not at all. Each answers the updated row,
 * or undefined when the row was not in an expected state or a guard failed (the caller says why).
 */
@Injectable()
export class TaskTransitionsRepository {
  constructor(
    private readonly db: DataSource,
    private readonly config: AppConfig,
  ) {}

  /** Read at use: RETRY_BACKOFF_BASE_MS and RETRY_BACKOFF_CAP_MS are hot settings (/v1/config). */
  get backoff(): string {
    return backoffSql('t.retry_count', this.config.RETRY_BACKOFF_BASE_MS, this.config.RETRY_BACKOFF_CAP_MS);
  }

  /** A pull worker takes this pending task: a new attempt, running under `workerId`. */
  claim(id: string, workerId: string): Promise<TaskRow | undefined> {
    return this.compareAndSet(id, CLAIM.from, {}, (p) => claimSet(p(workerId)), {
      type: 'claimed',
      message: `Acquired by worker ${workerId}`,
      data: { worker_id: workerId },
    });
  }

  /** The holder's heartbeat: the lease is extended; with progress it also marks the task running. */
  extendLease(
    id: string,
    guard: HolderGuard,
    report: { leaseSeconds: number; progress?: number; message?: string },
  ): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      HELD_STATES,
      guard,
      (p) => {
        const sets = [
          `lease_expires_at = GREATEST(t.lease_expires_at, now() + make_interval(secs => ${p(report.leaseSeconds)}))`,
        ];
        if (report.progress !== undefined)
          sets.push(
            `progress = ${p(report.progress)}`,
            `status = ${lit(RUNNING.to)}`,
            `started_at = COALESCE(t.started_at, now())`,
          );
        if (report.message !== undefined) sets.push(`progress_message = ${p(report.message)}`);
        return sets.join(', ');
      },
      {
        type: 'heartbeat',
        level: 'debug',
        message: 'Heartbeat',
        data: report.progress === undefined ? undefined : { progress: report.progress },
      },
    );
  }

  /** The holder reports progress: running (from dispatched, or still), with its percentage and message. */
  markRunning(id: string, guard: HolderGuard, progress: number, message?: string): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      RUNNING.from,
      guard,
      (p) => `status = ${lit(RUNNING.to)}, started_at = COALESCE(t.started_at, now()), progress = ${p(progress)},
              progress_message = ${p(message ?? null)}`,
      { type: 'progress', message: message ?? `Progress ${progress}%`, data: { progress } },
    );
  }

  /** The holder finished: its result stored (the single-row path of TaskBatchesRepository.completeMany). */
  complete(id: string, guard: HolderGuard, result: unknown, duration?: number): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      COMPLETE.from,
      guard,
      (p) => completeSet(`${p(JSON.stringify(result ?? null))}::jsonb`),
      {
        type: 'completed',
        message: 'Task completed',
        data: { duration: duration ?? null },
      },
    );
  }

  /**
   * The holder failed this attempt: retry with backoff while retries remain (if `retryable`),
   * else failed. The error keeps which attempt of which holder failed, so the same report sent
   * again is recognised.
   */
  failAttempt(
    id: string,
    guard: HolderGuard,
    error: Record<string, unknown>,
    retryable: boolean,
  ): Promise<TaskRow | undefined> {
    const set = retryable
      ? retryOrFinishSet(FAIL, this.backoff)
      : `status = ${lit(FAIL.to)}, completed_at = now(), lease_expires_at = NULL`;
    return this.compareAndSet(
      id,
      HELD_STATES,
      guard,
      (p) =>
        `${set}, error = ${p(JSON.stringify(error))}::jsonb || jsonb_build_object('attempt', t.attempt, 'holder', COALESCE(t.node_id, t.worker_id))`,
      {
        type: 'attempt_failed',
        level: 'error',
        message: `Attempt failed: ${String(error.message).slice(0, 500)}`,
        data: { retryable },
      },
    );
  }

  /**
   * The node holding the task hands it to a plugin: still running, now held by `pluginHolder`
   * and leased for its timeout; the node is free.
   */
  awaitPlugin(id: string, guard: HolderGuard, plugin: string, pluginHolder: string): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      RUNNING.from,
      guard,
      (p) => `status = ${lit(RUNNING.to)}, worker_id = ${p(pluginHolder)}, node_id = NULL,
              started_at = COALESCE(t.started_at, now()), lease_expires_at = now() + make_interval(secs => t.timeout_seconds)`,
      {
        type: 'awaiting_plugin',
        message: `Handed by ${guard.workerId ?? 'its holder'} to plugin ${plugin}`,
        data: { plugin, from: guard.workerId ?? null },
      },
    );
  }

  /**
   * A plugin's callback, in one transaction: `claim` records the delivery first (a repeated
   * webhook-id waits on the first one's row, then answers duplicate), then the compare-and-set
   * from the plugin's holding (`pluginHeld`): success completes, failed fails the attempt by the
   * retry policy, as the holder's own report would. `attempt`, when the plugin gives one, fences
   * an older attempt out. When nothing matches, the delivery is rolled back too, so the same
   * webhook-id may be tried again.
   */
  async settleForPlugin(
    id: string,
    plugin: string,
    holder: string,
    outcome: PluginOutcome,
    claim?: DeliveryClaim,
    attempt?: number,
  ): Promise<PluginSettlement> {
    const guard: Conditions = { attempt, pluginHeld: { plugin, holder } };
    const write = (tx: EntityManager): Promise<TaskRow | undefined> =>
      outcome.status === 'success'
        ? this.compareAndSet(
            id,
            COMPLETE.from,
            guard,
            (p) => completeSet(`${p(JSON.stringify(outcome.result ?? null))}::jsonb`),
            { type: 'completed', message: `Task completed by plugin ${plugin}`, data: { plugin } },
            tx,
          )
        : this.compareAndSet(
            id,
            FAIL.from,
            guard,
            (p) =>
              `${retryOrFinishSet(FAIL, this.backoff)}, error = ${p(JSON.stringify({ code: 'PLUGIN_FAILED', plugin, ...outcome.error }))}::jsonb
                || jsonb_build_object('attempt', t.attempt, 'holder', COALESCE(t.node_id, t.worker_id))`,
            {
              type: 'attempt_failed',
              level: 'error',
              message: `Plugin ${plugin} reported a failure: ${outcome.error.message.slice(0, 500)}`,
              data: { plugin },
            },
            tx,
          );
    try {
      return await this.db.transaction(async (tx): Promise<PluginSettlement> => {
        if (claim && !(await claim(tx))) return { duplicate: true };
        const row = await write(tx);
        if (!row) throw new Missed();
        return { row };
      });
    } catch (e) {
      if (e instanceof Missed) return { missed: true };
      throw e;
    }
  }

  /** A client cancels a task that has not finished. */
  cancel(id: string, reason?: string): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      CANCEL.from,
      {},
      (p) =>
        `status = ${lit(CANCEL.to)}, cancelled_at = now(), cancel_reason = ${p(reason ?? null)}, lease_expires_at = NULL`,
      { type: 'cancelled', message: reason ? `Cancelled: ${reason}` : 'Cancelled' },
    );
  }

  /** A client re-queues a finished task (within its retry limit unless `force`); not one that awaited a plugin. */
  retry(id: string, force: boolean): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      RETRY.from,
      { belowRetryLimit: !force, dispatchable: true },
      () => `retry_count = t.retry_count + 1, ${requeueSet}`,
      { type: 'retried', message: force ? 'Retried manually (forced)' : 'Retried manually' },
    );
  }

  /**
   * A reply to a finished task: appended to its messages, and the task goes back to the queue.
   * No entry (seed 000's bodiless reply): the task is continued as it is, re-queued.
   */
  replyAndRequeue(id: string, entry: unknown[], length: number): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      RETRY.from,
      { dispatchable: true },
      (p) => `messages = t.messages || ${p(JSON.stringify(entry))}::jsonb, ${requeueSet}`,
      entry.length > 0
        ? { type: 'reply', message: 'Reply added; task re-queued', data: { length } }
        : { type: 'reply', message: 'Continued; task re-queued', data: { length: 0 } },
    );
  }

  /** A reply to an unfinished task: appended to its messages (the holder gets it with the task), no state change. */
  appendReply(id: string, entry: unknown[], length: number): Promise<TaskRow | undefined> {
    return this.compareAndSet(
      id,
      [S.pending, ...HELD_STATES],
      {},
      (p) => `messages = t.messages || ${p(JSON.stringify(entry))}::jsonb`,
      { type: 'reply', message: 'Reply added', data: { length } },
    );
  }

  /**
   * The one compare-and-set every single-row transition goes through. `set` is a SQL SET list
   * over alias `t`; its values are `$n` placeholders numbered after the guard parameters.
   */
  private async compareAndSet(
    id: string,
    expected: readonly TaskState[],
    guard: Conditions,
    set: (param: Param) => string,
    event: EventSpec,
    tx?: EntityManager,
  ): Promise<TaskRow | undefined> {
    const params: unknown[] = [id, expected];
    const param: Param = (value) => {
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
    if (guard.pluginHeld) {
      const holder = param(guard.pluginHeld.holder);
      const plugin = param(guard.pluginHeld.plugin);
      conditions.push(`((t.status = ${lit(S.running)} AND t.worker_id = ${holder})
        OR (t.node_id IS NOT NULL AND lower(t.metadata->>'plugin') = lower(${plugin})))`);
    }
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
         INSERT INTO task_events (task_id, type, level, message, attempt, data, tenant_id)
         SELECT id, ${ev[0]}, ${ev[1]}, ${ev[2]}, attempt, ${ev[3]}::jsonb, u.tenant_id FROM u
       )
       SELECT * FROM u`,
      params,
    );
    return rows[0];
  }
}
