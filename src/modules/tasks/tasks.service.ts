import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { validateSync } from 'class-validator';
import { AppConfig } from '../../config/app-config.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { validationError } from '../../common/validation.js';
import { CreateTaskDto } from './dto/create-task.dto.js';
import type { ListTasksQuery, StatisticsQuery, TaskLogsQuery } from './dto/list-tasks.query.js';
import type { CompleteTaskDto, FailTaskDto, HeartbeatDto, HolderDto, ProgressDto } from './dto/worker.dto.js';
import { GroupCommit } from './group-commit.js';
import { PluginsService } from '../plugin-callbacks/plugins.service.js';
import { pluginHolder } from '../plugin-callbacks/plugin.types.js';
import { TaskIntake } from './task-intake.js';
import { TaskWaiters } from './task-waiters.js';
import { HELD_STATES, isTerminal, parseStatusFilter, statesLeadingTo, TERMINAL_STATES } from './task-state.js';
import {
  EVENT_LEVELS,
  type EventLevel,
  PRIORITIES,
  PRIORITY_VALUE,
  type NewTask,
  type PriorityName,
  type TaskEventRow,
  type TaskRow,
  type TaskState,
} from './task.types.js';
import { type StatisticsRows, TaskQueriesRepository } from './task-queries.repository.js';
import {
  type AckItem,
  type CompletionItem,
  type DeliveryClaim,
  type EventSpec,
  type HolderGuard,
  TasksRepository,
} from './tasks.repository.js';

export interface SubmitResult {
  row: TaskRow;
  created: boolean;
}

/** What a plugin's callback reports about the task it holds. */
export type PluginOutcome =
  { status: 'success'; result: unknown } | { status: 'failed'; error: { message: string; details?: unknown } };

export type BatchItemResult =
  { index: number; success: true; row: TaskRow; created: boolean } | { index: number; success: false; error: AppError };

/** How long acks wait to be written with others, and for a result that makes them moot. */
const ACK_COALESCE_MS = 5;
const finishingKey = (id: string, attempt: number): string => `${id}:${attempt}`;

/** Task lifecycle: intake, queries and every transition, each a compare-and-set in the repository. */
@Injectable()
export class TasksService {
  private readonly intake: TaskIntake;
  private readonly completions: GroupCommit<CompletionItem>;
  private readonly acks: GroupCommit<AckItem>;

  constructor(
    private readonly repo: TasksRepository,
    private readonly queries: TaskQueriesRepository,
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly plugins: PluginsService,
    private readonly waiters: TaskWaiters,
  ) {
    this.intake = new TaskIntake(repo);
    this.completions = new GroupCommit((items) => repo.completeMany(items));
    // Acks wait a moment: a device that answers at once sends its result right behind the ack,
    // and the result's write turns dispatched into completed by itself (one write per task, not two).
    // Only nodes already recorded as acknowledging (nodes.acks, which arms the unacked chase) skip.
    this.acks = new GroupCommit(
      async (items) => {
        const rows = await repo.startMany(items);
        items.forEach((i) => this.ackingNodes.add(i.node_id));
        return rows;
      },
      {
        delayMs: ACK_COALESCE_MS,
        skip: (ack) => this.ackingNodes.has(ack.node_id) && this.finishing.delete(finishingKey(ack.id, ack.attempt)),
      },
    );
  }

  /** Nodes whose acks this process has written (so nodes.acks is set for them). */
  private readonly ackingNodes = new Set<string>();

  /** Tasks whose holder just reported the end of an attempt (`id:attempt`): their ack is moot. */
  private readonly finishing = new Set<string>();

  /** Marks an attempt as ending so a waiting ack is dropped; forgotten shortly after. */
  private finishingAttempt(id: string, attempt: number | undefined): void {
    if (attempt === undefined) return;
    const key = finishingKey(id, attempt);
    this.finishing.add(key);
    setTimeout(() => this.finishing.delete(key), ACK_COALESCE_MS * 4).unref();
  }

  /** Tell the dispatcher (and anyone else) that tasks may be claimable now or at a new run_at. */
  private announceReady(count: number, runAt?: Date): void {
    if (count > 0) this.events.publish('tasks.ready', { count, runAt });
  }

  /** Publishes what a finished or re-queued task means, then frees its node's slot. */
  private announce(row: TaskRow): TaskRow {
    if (row.status === 'completed') this.events.publish('task.completed', { task: row });
    else if (row.status === 'failed' || row.status === 'timed_out')
      this.events.publish('task.failed', { task: row, retrying: false });
    else if (row.status === 'pending' && row.error) this.events.publish('task.failed', { task: row, retrying: true });
    // A task awaiting a plugin is not queued on retry: it waits again (running, error kept).
    else if (row.status === 'running' && row.awaits_callback && row.error)
      this.events.publish('task.failed', { task: row, retrying: true });
    return this.releaseNode(row);
  }

  /** A finished or re-queued task frees a slot on the node that held it. */
  private releaseNode(row: TaskRow): TaskRow {
    if (row.node_id && row.status !== 'running' && row.status !== 'dispatched') {
      this.events.publish('node.capacity', { nodeId: row.node_id });
    }
    if (row.status === 'pending') this.announceReady(1, row.run_at);
    return row;
  }

  // ---- intake -------------------------------------------------------------

  async submit(dto: CreateTaskDto, idempotencyHeader?: string): Promise<SubmitResult> {
    if (dto.awaits_callback !== undefined) return this.submitAwaiting(dto, this.newTask(dto, idempotencyHeader));
    const result = await this.intake.submit(this.newTask(dto, idempotencyHeader));
    if (result.created) {
      this.events.publish('task.created', { task: result.row });
      this.announceReady(1);
    }
    return result;
  }

  /**
   * A task that awaits a plugin (`awaits_callback`): inserted on its own (not through the
   * batched intake), straight to running under `plugin:<name>`; never dispatched.
   */
  private async submitAwaiting(dto: CreateTaskDto, task: NewTask): Promise<SubmitResult> {
    const plugin = dto.awaits_callback as string;
    if (dto.run_at !== undefined)
      throw AppError.validation('run_at', 'a task awaiting a plugin starts waiting at once: run_at is not allowed');
    if (!(await this.plugins.exists(plugin))) throw AppError.validation('awaits_callback', `unknown plugin: ${plugin}`);
    const row = await this.repo.insertAwaiting(task, plugin, pluginHolder(plugin));
    if (row) {
      this.events.publish('task.created', { task: row });
      return { row, created: true };
    }
    const [first] = await this.repo.findByIdempotencyKeys([task.idempotency_key as string]);
    if (!first) throw new Error(`task ${task.id} was neither inserted nor found by idempotency key`);
    return { row: first, created: false };
  }

  /** Validates each item on its own; valid ones are inserted in one statement, bad ones answer with their error. */
  async submitBatch(items: unknown[]): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(items.length);
    const valid: { index: number; task: NewTask }[] = [];
    const awaiting: { index: number; dto: CreateTaskDto }[] = [];
    // validateSync: the DTO has no async rules, and a thousand awaited validations cost more than the checks.
    items.forEach((item, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        results[index] = { index, success: false, error: AppError.validation(`tasks[${index}]`, 'must be an object') };
        return;
      }
      // CreateTaskDto has no nested types to transform: a prototype swap is all class-validator needs.
      const dto = Object.assign(Object.create(CreateTaskDto.prototype) as CreateTaskDto, item);
      const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
      if (errors.length) results[index] = { index, success: false, error: validationError(errors) };
      else if (dto.awaits_callback !== undefined) awaiting.push({ index, dto });
      else valid.push({ index, task: this.newTask(dto) });
    });
    // Items awaiting a plugin take the separate insert, one by one.
    for (const { index, dto } of awaiting) {
      try {
        results[index] = { index, success: true, ...(await this.submitAwaiting(dto, this.newTask(dto))) };
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        results[index] = { index, success: false, error: e };
      }
    }
    if (valid.length) {
      const inserted = await this.intake.insert(valid.map((v) => v.task));
      inserted.forEach((r, i) => {
        results[valid[i].index] = { index: valid[i].index, success: true, ...r };
      });
      const created = inserted.filter((r) => r.created);
      created.forEach((r) => this.events.publish('task.created', { task: r.row }));
      this.announceReady(created.length);
    }
    return results;
  }

  private newTask(dto: CreateTaskDto, idempotencyHeader?: string): NewTask {
    return {
      id: randomUUID(),
      type: dto.type ?? 'prompt',
      prompt: dto.prompt ?? null,
      data: dto.data ?? null,
      priority: PRIORITY_VALUE[dto.priority ?? 'medium'],
      tags: dto.tags ?? [],
      required_tags: dto.required_tags ?? [],
      work_directory: dto.work_directory ?? null,
      environment: dto.environment ?? null,
      files: dto.files ?? null,
      target_node_id: dto.target_node_id ?? null,
      max_retries: dto.max_retries ?? this.config.TASK_DEFAULT_MAX_RETRIES,
      timeout_seconds: dto.timeout_seconds ?? this.config.TASK_DEFAULT_TIMEOUT_SECONDS,
      run_at: dto.run_at ?? null,
      metadata: dto.metadata ?? {},
      idempotency_key: dto.idempotency_key ?? idempotencyHeader ?? null,
    };
  }

  // ---- queries --------------------------------------------------------------

  async get(id: string): Promise<TaskRow> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Task', id);
    return row;
  }

  /**
   * The task, once it is finished or `waitSeconds` have passed (whichever comes first); at once
   * without `waitSeconds`. `signal` aborts the wait (the client went away).
   */
  async getWhenFinished(id: string, waitSeconds: number | undefined, signal?: AbortSignal): Promise<TaskRow> {
    if (!waitSeconds) return this.get(id);
    // The waiter first, then the read: a finish in between still wakes it.
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const finished = this.waiters.wait(id, waitSeconds * 1000, ac.signal);
      const current = await this.get(id).catch((e: unknown) => {
        ac.abort();
        throw e;
      });
      if (isTerminal(current.status)) {
        ac.abort();
        return current;
      }
      const row = await finished;
      if (row || signal?.aborted) return row ?? current;
      return (await this.repo.findById(id).catch(() => undefined)) ?? current;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async list(q: ListTasksQuery): Promise<{ rows: TaskRow[]; total: number; limit: number; offset: number }> {
    let states: TaskState[] | undefined;
    if (q.status) {
      const parsed = parseStatusFilter(q.status);
      if ('unknown' in parsed) throw AppError.validation('status', `unknown status: ${parsed.unknown}`);
      states = parsed.states;
    }
    let priorities: number[] | undefined;
    if (q.priority) {
      priorities = [];
      for (const name of q.priority
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        if (!(PRIORITIES as readonly string[]).includes(name))
          throw AppError.validation('priority', `unknown priority: ${name}`);
        priorities.push(PRIORITY_VALUE[name as PriorityName]);
      }
    }
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.queries.list({
      states,
      priorities,
      tag: q.tag,
      type: q.type,
      workerId: q.worker_id,
      nodeId: q.node_id,
      createdAfter: q.created_after ? new Date(q.created_after) : undefined,
      createdBefore: q.created_before ? new Date(q.created_before) : undefined,
      sort: q.sort ?? 'created_at',
      order: q.order ?? 'desc',
      limit,
      offset,
    });
    return { rows, total, limit, offset };
  }

  async logs(id: string, q: TaskLogsQuery): Promise<TaskEventRow[]> {
    const levels = q.level ? EVENT_LEVELS.slice(EVENT_LEVELS.indexOf(q.level)) : undefined;
    const events = await this.queries.events(id, {
      since: q.since ? new Date(q.since) : undefined,
      levels,
      limit: q.limit ?? 200,
    });
    if (events.length === 0) await this.get(id); // 404 for an unknown task, [] for a quiet one
    return events;
  }

  statistics(q: StatisticsQuery): Promise<StatisticsRows & { periodHours: number }> {
    const match = /^(\d{1,4})([hd])$/.exec(q.period ?? '24h');
    if (!match) throw AppError.validation('period', 'period must look like 24h or 7d');
    const periodHours = Number(match[1]) * (match[2] === 'd' ? 24 : 1);
    if (periodHours < 1 || periodHours > 90 * 24)
      throw AppError.validation('period', 'period must be between 1h and 90d');
    const interval = q.interval ?? 'hour';
    const buckets = periodHours * (interval === 'minute' ? 60 : interval === 'hour' ? 1 : 1 / 24);
    if (buckets > 5000)
      throw AppError.validation('interval', 'too many points: use a longer interval or a shorter period');
    return this.queries.statistics(periodHours, interval).then((r) => ({ ...r, periodHours }));
  }

  // ---- pull workers ---------------------------------------------------------

  async next(workerId: string, workPath?: string): Promise<TaskRow | undefined> {
    const row = await this.repo.claimNext(workerId, workPath, this.config.TASK_MAX_ACTIVE);
    if (row) this.events.publish('task.started', { task: row });
    return row;
  }

  async acquire(id: string, workerId: string): Promise<TaskRow> {
    const row = await this.repo.compareAndSet(id, ['pending'], {}, (p) => this.repo.claimSetSql(p(workerId)), {
      type: 'claimed',
      message: `Acquired by worker ${workerId}`,
      data: { worker_id: workerId },
    });
    if (row) {
      this.events.publish('task.started', { task: row });
      return row;
    }
    const current = await this.get(id);
    if (HELD_STATES.includes(current.status)) {
      if (current.worker_id === workerId) return current; // the same worker asking again
      throw new AppError(ErrorCode.CONFLICT, 'Task already acquired by another worker');
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status} and cannot be acquired`);
  }

  async heartbeat(id: string, dto: HeartbeatDto): Promise<TaskRow> {
    const lease = this.config.TASK_LEASE_SECONDS;
    const row = await this.holderUpdate(
      id,
      dto,
      'heartbeat',
      (p) => {
        const sets = [`lease_expires_at = GREATEST(t.lease_expires_at, now() + make_interval(secs => ${p(lease)}))`];
        if (dto.progress !== undefined)
          sets.push(
            `progress = ${p(dto.progress)}`,
            `status = 'running'`,
            `started_at = COALESCE(t.started_at, now())`,
          );
        if (dto.message !== undefined) sets.push(`progress_message = ${p(dto.message)}`);
        return sets.join(', ');
      },
      {
        type: 'heartbeat',
        level: 'debug',
        message: 'Heartbeat',
        data: dto.progress === undefined ? undefined : { progress: dto.progress },
      },
    );
    if (dto.progress !== undefined) this.events.publish('task.progress', { task: row });
    return row;
  }

  async progress(id: string, dto: ProgressDto): Promise<TaskRow> {
    const row = await this.holderUpdate(
      id,
      dto,
      'report progress for',
      (p) => `status = 'running', started_at = COALESCE(t.started_at, now()), progress = ${p(dto.progress)},
              progress_message = ${p(dto.message ?? null)}`,
      { type: 'progress', message: dto.message ?? `Progress ${dto.progress}%`, data: { progress: dto.progress } },
    );
    this.events.publish('task.progress', { task: row });
    return row;
  }

  async complete(id: string, dto: CompleteTaskDto): Promise<TaskRow> {
    const result = {
      ...dto.result,
      ...(dto.original_prompt !== undefined ? { original_prompt: dto.original_prompt } : {}),
    };
    if (dto.result.status !== 'success') {
      return this.failAttempt(
        id,
        dto,
        { code: 'TASK_FAILED', message: dto.result.output ?? `Worker reported ${dto.result.status}`, result },
        true,
      );
    }
    return this.succeed(id, dto, result, dto.result.duration);
  }

  /** The holder finished the task: store its result (batched with other completions of this tick). */
  async succeed(id: string, holder: HolderDto, result: unknown, duration?: number): Promise<TaskRow> {
    this.finishingAttempt(id, holder.attempt);
    const won = await this.completions.submit({
      id,
      holder: holder.worker_id ?? null,
      attempt: holder.attempt ?? null,
      result: result ?? null,
      duration: duration ?? null,
    });
    if (won) return this.announce(won);
    // The same result again (a device resending after a lost ack, a retry after a dropped
    // connection whose commit went through): applied once, answered as done. A different
    // result for a finished attempt is still a conflict.
    const current = await this.repo.findById(id);
    if (current?.status === 'completed' && sameReporter(current, holder) && sameJson(current.result, result ?? null))
      return this.releaseNode(current);
    // Lost its compare-and-set: the single-row path says why (and logs a stale report).
    const row = await this.holderUpdate(
      id,
      holder,
      'complete',
      (p) => `status = 'completed', result = ${p(JSON.stringify(result ?? null))}::jsonb, error = NULL, progress = 100,
              completed_at = now(), started_at = COALESCE(t.started_at, now()), lease_expires_at = NULL`,
      { type: 'completed', message: 'Task completed', data: { duration: duration ?? null } },
    );
    return this.announce(row);
  }

  fail(id: string, dto: FailTaskDto): Promise<TaskRow> {
    return this.failAttempt(
      id,
      dto,
      { code: 'TASK_FAILED', message: dto.error, details: dto.details ?? null },
      dto.retryable ?? true,
    );
  }

  /** The holder failed this attempt: retry with backoff while retries remain (if retryable), else failed. */
  async failAttempt(
    id: string,
    holder: HolderDto,
    error: Record<string, unknown>,
    retryable: boolean,
  ): Promise<TaskRow> {
    this.finishingAttempt(id, holder.attempt);
    const set = retryable
      ? this.repo.retryOrFinishSql('failed')
      : `status = 'failed', completed_at = now(), lease_expires_at = NULL`;
    // The error keeps which attempt of which holder failed, so the same report sent again is recognised.
    const recorded = (p: (v: unknown) => string): string =>
      `${set}, error = ${p(JSON.stringify(error))}::jsonb || jsonb_build_object('attempt', t.attempt, 'holder', COALESCE(t.node_id, t.worker_id))`;
    try {
      const row = await this.holderUpdate(id, holder, 'fail', recorded, {
        type: 'attempt_failed',
        level: 'error',
        message: `Attempt failed: ${String(error.message).slice(0, 500)}`,
        data: { retryable },
      });
      return this.announce(row);
    } catch (e) {
      const current = await this.repo.findById(id);
      if (current && isRepeatedFailure(current, holder)) return current;
      throw e;
    }
  }

  /**
   * A node acknowledged an assignment: dispatched → running (group-committed with other acks
   * of the same tick). Answers the row, or undefined when the task moved on (cancelled,
   * released, another attempt): the node learns that from `cancel_task`.
   */
  acknowledge(item: AckItem): Promise<TaskRow | undefined> {
    return this.acks.submit(item);
  }

  /** Sends the node its held tasks among `ids` again (same attempt): it registered again without them. */
  redeliver(nodeId: string, ids: string[]): Promise<TaskRow[]> {
    return ids.length ? this.repo.redeliver(nodeId, ids) : Promise.resolve([]);
  }

  /**
   * Acknowledging nodes that did not acknowledge an assignment in time: it is sent once more;
   * still nothing after another timeout, and it goes back to the queue for another node.
   */
  async chaseUnacked(timeoutSeconds: number): Promise<{ resent: number; released: number }> {
    const resent = await this.repo.redeliverUnacked(timeoutSeconds, 500);
    for (const { vocabulary, ...task } of resent) this.events.publish('task.redelivered', { task, vocabulary });
    const released = await this.repo.releaseUnacked(timeoutSeconds);
    for (const row of released) {
      const nodeId = (row.error as { node_id?: string } | null)?.node_id;
      if (nodeId)
        this.events.publish('task.revoked', {
          taskId: row.id,
          attempt: row.attempt,
          nodeId,
          reason: 'not acknowledged in time',
        });
      this.announce(row);
    }
    return { resent: resent.length, released: released.length };
  }

  // ---- plugins ----------------------------------------------------------------

  /**
   * The node holding the task hands it to a plugin (`task_result {status: 'pending', plugin}`):
   * still running, now held by `plugin:<name>` and leased for its timeout; the node is free.
   */
  async awaitPlugin(id: string, holder: HolderDto, plugin: string): Promise<TaskRow> {
    if (!(await this.plugins.exists(plugin))) throw AppError.validation('plugin', `unknown plugin: ${plugin}`);
    this.finishingAttempt(id, holder.attempt);
    const row = await this.holderUpdate(
      id,
      holder,
      'hand to a plugin',
      (
        p,
      ) => `status = 'running', worker_id = ${p(pluginHolder(plugin))}, node_id = NULL, started_at = COALESCE(t.started_at, now()),
              lease_expires_at = now() + make_interval(secs => t.timeout_seconds)`,
      {
        type: 'awaiting_plugin',
        message: `Handed by ${holder.worker_id ?? 'its holder'} to plugin ${plugin}`,
        data: { plugin, from: holder.worker_id ?? null },
      },
    );
    if (holder.worker_id) this.events.publish('node.capacity', { nodeId: holder.worker_id });
    return row;
  }

  /**
   * A plugin's callback for a task it holds: success completes it, failed fails the attempt
   * (retry policy; an `awaits_callback` task waits again instead of being queued). `claim`
   * records the delivery in the same transaction, so a repeated webhook-id is applied once.
   */
  async settleFromPlugin(
    id: string,
    plugin: string,
    outcome: PluginOutcome,
    claim?: DeliveryClaim,
  ): Promise<{ row: TaskRow; duplicate: boolean }> {
    const holder = pluginHolder(plugin);
    const settled =
      outcome.status === 'success'
        ? await this.repo.settleForPlugin(
            id,
            holder,
            (
              p,
            ) => `status = 'completed', result = ${p(JSON.stringify(outcome.result ?? null))}::jsonb, error = NULL, progress = 100,
                    completed_at = now(), started_at = COALESCE(t.started_at, now()), lease_expires_at = NULL`,
            { type: 'completed', message: `Task completed by plugin ${plugin}`, data: { plugin } },
            claim,
          )
        : await this.repo.settleForPlugin(
            id,
            holder,
            (
              p,
            ) => `${this.repo.retryOrFinishSql('failed')}, error = ${p(JSON.stringify({ code: 'PLUGIN_FAILED', plugin, ...outcome.error }))}::jsonb
                    || jsonb_build_object('attempt', t.attempt, 'holder', t.worker_id)`,
            {
              type: 'attempt_failed',
              level: 'error',
              message: `Plugin ${plugin} reported a failure: ${outcome.error.message.slice(0, 500)}`,
              data: { plugin },
            },
            claim,
          );
    if ('row' in settled) return { row: this.announce(settled.row), duplicate: false };
    const current = await this.get(id);
    if ('duplicate' in settled) return { row: current, duplicate: true };
    throw new AppError(ErrorCode.CONFLICT, `Task is not awaiting plugin ${plugin}`, {
      state: current.status,
      awaiting:
        current.status === 'running' && current.worker_id?.startsWith('plugin:')
          ? current.worker_id.slice('plugin:'.length)
          : null,
    });
  }

  /** A report from the holder of a dispatched/running task; anyone else (or an older attempt) is refused. */
  private async holderUpdate(
    id: string,
    holder: HolderDto,
    action: string,
    set: (p: (v: unknown) => string) => string,
    event: EventSpec,
  ): Promise<TaskRow> {
    const guard: HolderGuard = { attempt: holder.attempt, workerId: holder.worker_id };
    const row = await this.repo.compareAndSet(id, HELD_STATES, guard, set, event);
    if (row) return row;
    const current = await this.get(id);
    const heldByOther =
      (guard.workerId !== undefined && guard.workerId !== current.worker_id && guard.workerId !== current.node_id) ||
      (guard.attempt !== undefined && guard.attempt !== current.attempt);
    if (heldByOther) {
      // Logged, never applied: the task's history shows who tried what.
      await this.repo.appendEvent(id, current.attempt, {
        type: 'stale_report_rejected',
        level: 'warn',
        message: `Rejected ${action} from ${holder.worker_id ?? 'unknown worker'} (attempt ${holder.attempt ?? '?'})`,
        data: {
          worker_id: holder.worker_id ?? null,
          attempt: holder.attempt ?? null,
          current_attempt: current.attempt,
        },
      });
      throw new AppError(ErrorCode.STALE_ATTEMPT, 'Report is from an older attempt or another worker', {
        current_attempt: current.attempt,
      });
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status}; cannot ${action} it`, { state: current.status });
  }

  // ---- client actions -------------------------------------------------------

  async cancel(id: string, reason?: string): Promise<TaskRow> {
    const from = statesLeadingTo('cancelled');
    const row = await this.repo.compareAndSet(
      id,
      from,
      {},
      (p) =>
        `status = 'cancelled', cancelled_at = now(), cancel_reason = ${p(reason ?? null)}, lease_expires_at = NULL`,
      { type: 'cancelled', message: reason ? `Cancelled: ${reason}` : 'Cancelled' },
    );
    if (row) {
      this.events.publish('task.cancelled', { task: row, nodeId: row.node_id });
      return this.releaseNode(row);
    }
    const current = await this.get(id);
    throw new AppError(ErrorCode.CONFLICT, `Task is already ${current.status}`, { state: current.status });
  }

  async retry(id: string, force = false): Promise<TaskRow> {
    const row = await this.repo.compareAndSet(
      id,
      TERMINAL_STATES,
      { belowRetryLimit: !force, dispatchable: true },
      () => `retry_count = t.retry_count + 1, ${this.requeueSql()}`,
      { type: 'retried', message: force ? 'Retried manually (forced)' : 'Retried manually' },
    );
    if (row) return this.releaseNode(row);
    const current = await this.get(id);
    if (current.awaits_callback) throw awaitedPluginConflict(current);
    if (TERMINAL_STATES.includes(current.status)) {
      throw new AppError(
        ErrorCode.RETRY_LIMIT_EXCEEDED,
        `Task has used ${current.retry_count} of ${current.max_retries} retries; pass force to retry anyway`,
        { retry_count: current.retry_count, max_retries: current.max_retries },
      );
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status}; only finished tasks can be retried`, {
      state: current.status,
    });
  }

  async reply(id: string, message: string): Promise<TaskRow> {
    const entry = JSON.stringify([{ role: 'user', content: message, at: new Date().toISOString() }]);
    // Finished: the conversation continues, so the task goes back to the queue. Active: the holder gets it with the task.
    const requeued = await this.repo.compareAndSet(
      id,
      TERMINAL_STATES,
      { dispatchable: true },
      (p) => `messages = t.messages || ${p(entry)}::jsonb, ${this.requeueSql()}`,
      { type: 'reply', message: 'Reply added; task re-queued', data: { length: message.length } },
    );
    if (requeued) return this.releaseNode(requeued);
    const appended = await this.repo.compareAndSet(
      id,
      ['pending', 'dispatched', 'running'],
      {},
      (p) => `messages = t.messages || ${p(entry)}::jsonb`,
      { type: 'reply', message: 'Reply added', data: { length: message.length } },
    );
    if (appended) return appended;
    const current = await this.get(id);
    if (current.awaits_callback) throw awaitedPluginConflict(current);
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status}; try again`, { state: current.status });
  }

  private requeueSql(): string {
    return `status = 'pending', run_at = now(), last_retry_at = now(), worker_id = NULL, node_id = NULL,
            lease_expires_at = NULL, progress = 0, progress_message = NULL, result = NULL, error = NULL,
            completed_at = NULL, cancelled_at = NULL, cancel_reason = NULL, dispatched_at = NULL, started_at = NULL`;
  }

  /** Tasks of nodes that are gone (offline past the reconnect grace) go back by the retry policy. */
  async releaseLostNodeTasks(graceSeconds: number): Promise<TaskRow[]> {
    const rows = await this.repo.releaseLostNodeTasks(graceSeconds);
    rows.forEach((r) => this.announce(r));
    return rows;
  }

  /** Every task a node holds goes back at once (the node was deleted). */
  async releaseNodeTasks(nodeId: string): Promise<TaskRow[]> {
    const rows = await this.repo.releaseNodeTasks(nodeId);
    rows.forEach((r) => this.announce(r));
    return rows;
  }

  /** A log line from the task's holder, kept in the task's events. */
  async appendHolderLog(
    id: string,
    holderId: string,
    level: EventLevel,
    message: string,
    data?: unknown,
  ): Promise<void> {
    const task = await this.get(id);
    if (task.node_id !== holderId && task.worker_id !== holderId) {
      throw new AppError(ErrorCode.STALE_ATTEMPT, 'Only the node holding this task can log to it');
    }
    await this.repo.appendEvent(id, task.attempt, { type: 'log', level, message, data });
  }

  async heldBy(nodeId: string): Promise<TaskRow[]> {
    return this.repo.heldBy(nodeId);
  }

  async sweepExpiredLeases(limit = 500): Promise<TaskRow[]> {
    const rows = await this.repo.sweepExpiredLeases(limit);
    rows.forEach((r) => this.announce(r));
    return rows;
  }
}

/** A finished task created to await a plugin is not re-queued (it would go to a node). */
function awaitedPluginConflict(row: TaskRow): AppError {
  return new AppError(
    ErrorCode.CONFLICT,
    `Task awaited plugin ${row.awaits_callback ?? '?'} and is ${row.status}; submit a new task instead`,
    {
      state: row.status,
    },
  );
}

/** Is this finished row the work of the reporting holder (and attempt, when it says which)? */
function sameReporter(row: TaskRow, holder: HolderDto): boolean {
  const by = holder.worker_id;
  return (
    (by === undefined || by === row.node_id || by === row.worker_id) &&
    (holder.attempt === undefined || holder.attempt === row.attempt)
  );
}

/** The failure of this holder's attempt was already applied (the task moved on because of it). */
function isRepeatedFailure(row: TaskRow, holder: HolderDto): boolean {
  if (HELD_STATES.includes(row.status)) return false;
  const e = row.error as { attempt?: unknown; holder?: unknown } | null;
  if (!e || e.attempt !== row.attempt) return false;
  return (
    (holder.worker_id === undefined || holder.worker_id === e.holder) &&
    (holder.attempt === undefined || holder.attempt === e.attempt)
  );
}

/** Equal as stored JSON (object key order ignored as jsonb ignores it; undefined members are not stored). */
function sameJson(stored: unknown, reported: unknown): boolean {
  return jsonEqual(stored, JSON.parse(JSON.stringify(reported ?? null)));
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
