import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { PluginsService } from '../plugin-callbacks/plugins.service.js';
import { pluginHolder } from '../plugin-callbacks/plugin.types.js';
import type { CompleteTaskDto, FailTaskDto, HeartbeatDto, HolderDto, ProgressDto } from './dto/worker.dto.js';
import { GroupCommit } from './group-commit.js';
import { isRepeatedFailure, sameJson, sameReporter } from './holder-reports.js';
import { TaskAnnouncer } from './task-announcer.js';
import {
  type AckItem,
  type CompletionItem,
  type PullFilter,
  TaskBatchesRepository,
} from './task-batches.repository.js';
import { isHeld } from './task-state.js';
import { type DeliveryClaim, type HolderGuard, TaskTransitionsRepository } from './task-transitions.repository.js';
import type { EventLevel, PluginOutcome, TaskRow } from './task.types.js';
import { TasksRepository } from './tasks.repository.js';
import { currentTenantSetting, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { FairShare, weightOf } from '../concurrency/fair-share.js';
import { TenantsService } from '../tenants/tenants.service.js';

/** How long acks wait to be written with others, and for a result that makes them moot. */
const ACK_COALESCE_MS = 5;
const finishingKey = (id: string, attempt: number): string => `${id}:${attempt}`;

/**
 * Reports from whoever holds a task: pull workers (next, acquire, heartbeat, progress,
 * complete, fail), nodes (ack, redeliver, results, logs) and plugins (await, settle). A report
 * from anyone but the holder of the current attempt is refused and logged, never applied.
 */
@Injectable()
export class TaskHoldersService {
  private readonly completions: GroupCommit<CompletionItem>;
  private readonly acks: GroupCommit<AckItem>;

  /** Nodes whose acks this process has written (so nodes.acks is set for them). */
  private readonly ackingNodes = new Set<string>();

  /** Tasks whose holder just reported the end of an attempt (`id:attempt`): their ack is moot. */
  private readonly finishing = new Set<string>();

  /** The tenants' turns on global pull workers. */
  private readonly pullTurns = new FairShare();

  constructor(
    private readonly repo: TasksRepository,
    private readonly transitions: TaskTransitionsRepository,
    private readonly batches: TaskBatchesRepository,
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly plugins: PluginsService,
    private readonly announce: TaskAnnouncer,
    private readonly tenants: TenantsService,
  ) {
    this.completions = new GroupCommit((items) => batches.completeMany(items));
    // Acks wait a moment: a device that answers at once sends its result right behind the ack,
    // and the result's write turns dispatched into completed by itself (one write per task, not two).
    // Only nodes already recorded as acknowledging (nodes.acks, which arms the unacked chase) skip.
    this.acks = new GroupCommit(
      async (items) => {
        const rows = await batches.startMany(items);
        items.forEach((i) => this.ackingNodes.add(i.node_id));
        return rows;
      },
      {
        delayMs: ACK_COALESCE_MS,
        skip: (ack) => this.ackingNodes.has(ack.node_id) && this.finishing.delete(finishingKey(ack.id, ack.attempt)),
      },
    );
  }

  /** Marks an attempt as ending so a waiting ack is dropped; forgotten shortly after. */
  private finishingAttempt(id: string, attempt: number | undefined): void {
    if (attempt === undefined) return;
    const key = finishingKey(id, attempt);
    this.finishing.add(key);
    setTimeout(() => this.finishing.delete(key), ACK_COALESCE_MS * 4).unref();
  }

  // ---- pull workers ---------------------------------------------------------

  async next(workerId: string, filter: PullFilter = {}): Promise<TaskRow | undefined> {
    // A global worker takes every tenant's tasks: the tenants take turns, by weight (docs/flow-control.md, "Fairness").
    const global = currentTenantSetting() === SYSTEM_TENANT;
    const turns = global ? this.pullTurns.rank(this.pullTurns.tenants()) : undefined;
    const row = await this.batches.claimNext(workerId, filter, this.config.TASK_MAX_ACTIVE, turns);
    if (row && global) this.pullTurns.charge(row.tenant_id, 1, weightOf(await this.tenants.limitsOf(row.tenant_id)));
    if (row) this.events.publish('task.started', { task: row });
    return row;
  }

  async acquire(id: string, workerId: string): Promise<TaskRow> {
    const row = await this.transitions.claim(id, workerId);
    if (row) {
      this.events.publish('task.started', { task: row });
      return row;
    }
    const current = await this.get(id);
    if (isHeld(current.status)) {
      if (current.worker_id === workerId) return current; // the same worker asking again
      throw new AppError(ErrorCode.CONFLICT, 'Task already acquired by another worker');
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status} and cannot be acquired`);
  }

  async heartbeat(id: string, dto: HeartbeatDto): Promise<TaskRow> {
    const row = await this.holderUpdate(id, dto, 'heartbeat', (guard) =>
      this.transitions.extendLease(id, guard, {
        leaseSeconds: this.config.TASK_LEASE_SECONDS,
        progress: dto.progress,
        message: dto.message,
      }),
    );
    if (dto.progress !== undefined) this.events.publish('task.progress', { task: row });
    return row;
  }

  async progress(id: string, dto: ProgressDto): Promise<TaskRow> {
    const row = await this.holderUpdate(id, dto, 'report progress for', (guard) =>
      this.transitions.markRunning(id, guard, dto.progress, dto.message),
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
    if (won) return this.announce.attemptEnded(won);
    // The same result again (a device resending after a lost ack, a retry after a dropped
    // connection whose commit went through): applied once, answered as done. A different
    // result for a finished attempt is still a conflict.
    const current = await this.repo.findById(id);
    if (current?.status === 'completed' && sameReporter(current, holder) && sameJson(current.result, result ?? null))
      return this.announce.releaseNode(current);
    // Lost its compare-and-set: the single-row path says why (and logs a stale report).
    const row = await this.holderUpdate(id, holder, 'complete', (guard) =>
      this.transitions.complete(id, guard, result, duration),
    );
    return this.announce.attemptEnded(row);
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
    try {
      const row = await this.holderUpdate(id, holder, 'fail', (guard) =>
        this.transitions.failAttempt(id, guard, error, retryable),
      );
      return this.announce.attemptEnded(row);
    } catch (e) {
      const current = await this.repo.findById(id);
      if (current && isRepeatedFailure(current, holder)) return current;
      throw e;
    }
  }

  // ---- nodes ------------------------------------------------------------------

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
    return ids.length ? this.batches.redeliver(nodeId, ids) : Promise.resolve([]);
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

  // ---- plugins ----------------------------------------------------------------

  /**
   * The node holding the task hands it to a plugin (`task_result {status: 'pending', plugin}`):
   * still running, now held by `plugin:<name>` and leased for its timeout; the node is free.
   */
  async awaitPlugin(id: string, holder: HolderDto, named: string | undefined): Promise<TaskRow> {
    // Seed 001 §7.4 sends `{taskId, status: 'pending'}` alone: the plugin is the one the task names.
    named ??= await this.pluginOf(id);
    if (named === undefined)
      throw AppError.validation('plugin', 'a pending result names the plugin that will call back');
    const plugin = await this.plugins.canonicalName(named);
    if (plugin === undefined) throw AppError.validation('plugin', `unknown plugin: ${named}`);
    this.finishingAttempt(id, holder.attempt);
    const row = await this.holderUpdate(id, holder, 'hand to a plugin', (guard) =>
      this.transitions.awaitPlugin(id, guard, plugin, pluginHolder(plugin)),
    );
    if (holder.worker_id) this.events.publish('node.capacity', { nodeId: holder.worker_id });
    return row;
  }

  /** The plugin a task's metadata names (its `task_assign.callback`), if any. */
  private async pluginOf(id: string): Promise<string | undefined> {
    const plugin = (await this.repo.findById(id))?.metadata?.plugin;
    return typeof plugin === 'string' && plugin.length > 0 ? plugin : undefined;
  }

  /**
   * A plugin's callback (`plugin` as registered): for a task it holds (created to await it, or
   * handed over by its node's `pending`), or for one a node holds whose metadata names the
   * plugin (seed 001 §7.3 step 4: the callback in `task_assign` works while the node runs it).
   * Success completes it, failed fails the attempt by the retry policy (an `awaits_callback`
   * task waits again instead of being queued). `attempt`, when given, must be the current one.
   * `claim` records the delivery in the same transaction, so a repeated webhook-id is applied once.
   */
  async settleFromPlugin(
    id: string,
    plugin: string,
    outcome: PluginOutcome,
    claim?: DeliveryClaim,
    attempt?: number,
  ): Promise<{ row: TaskRow; duplicate: boolean }> {
    const settled = await this.transitions.settleForPlugin(id, plugin, pluginHolder(plugin), outcome, claim, attempt);
    if ('row' in settled) {
      const row = this.announce.attemptEnded(settled.row);
      this.releaseRequeuedNode(row);
      return { row, duplicate: false };
    }
    const current = await this.get(id);
    if ('duplicate' in settled) return { row: current, duplicate: true };
    if (attempt !== undefined && attempt !== current.attempt) {
      await this.repo.appendEvent(id, current.attempt, {
        type: 'stale_report_rejected',
        level: 'warn',
        message: `Rejected the callback of plugin ${plugin} for attempt ${attempt}`,
        data: { plugin, attempt, current_attempt: current.attempt },
      });
      throw new AppError(
        ErrorCode.STALE_ATTEMPT,
        `Callback is for attempt ${attempt}; the task is on attempt ${current.attempt}`,
        {
          attempt,
          current_attempt: current.attempt,
        },
      );
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is not awaiting plugin ${plugin}`, {
      state: current.status,
      awaiting: awaitedPlugin(current),
    });
  }

  /**
   * A node's task that the plugin's failure sent back to the queue no longer names its node
   * (releaseNode cannot see it): the error keeps who held it, and that node has a free slot.
   */
  private releaseRequeuedNode(row: TaskRow): void {
    const holder = (row.error as { holder?: unknown } | null)?.holder;
    if (row.status === 'pending' && typeof holder === 'string' && !holder.startsWith('plugin:'))
      this.events.publish('node.capacity', { nodeId: holder });
  }

  // ---- guards -------------------------------------------------------------------

  private async get(id: string): Promise<TaskRow> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Task', id);
    return row;
  }

  /** A report from the holder of a dispatched/running task; anyone else (or an older attempt) is refused. */
  private async holderUpdate(
    id: string,
    holder: HolderDto,
    action: string,
    write: (guard: HolderGuard) => Promise<TaskRow | undefined>,
  ): Promise<TaskRow> {
    const guard: HolderGuard = { attempt: holder.attempt, workerId: holder.worker_id };
    const row = await write(guard);
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
}

/** Which plugin may settle this task now, for a refusal's details: its plugin holder, or the node's task's metadata.plugin. */
function awaitedPlugin(row: TaskRow): string | null {
  if (row.status === 'running' && row.worker_id?.startsWith('plugin:')) return row.worker_id.slice('plugin:'.length);
  const named = row.metadata?.plugin;
  if (isHeld(row.status) && row.node_id && typeof named === 'string' && named.length > 0) return named;
  return null;
}
