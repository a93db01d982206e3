import { concurrencyKeyOf } from '../concurrency/concurrency-key.validator.js';
import { Injectable } from '@nestjs/common';
import { validateSync } from 'class-validator';
import { AppConfig } from '../../config/app-config.js';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { validationError } from '../../common/validation.js';
import { PluginsService } from '../plugin-callbacks/plugins.service.js';
import { pluginHolder } from '../plugin-callbacks/plugin.types.js';
import { CreateTaskDto } from './dto/create-task.dto.js';
import { CreateTaskFastValidator } from './dto/create-task.validator.js';
import { TaskAnnouncer } from './task-announcer.js';
import { TaskAssignmentsRepository } from './task-assignments.repository.js';
import { timeOrderedUuid } from './task-id.js';
import { TaskIntake } from './task-intake.js';
import { PRIORITY_VALUE, type NewTask, type TaskRow } from './task.types.js';
import { TasksRepository } from './tasks.repository.js';
import { tenantLimitExceeded, TenantTaskLimit } from './tenant-task-limit.js';
import { currentTraceparent, currentTracestate } from '../../common/call-context.js';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from '../../common/tracing/traceparent.js';
import { tracingEnabled } from '../../common/tracing/tracer.js';
import { spanClock, traceIntake } from './task-tracing.js';

export interface SubmitResult {
  row: TaskRow;
  created: boolean;
}

/**
 * Whether a submitted task may be assigned to a node in its own insert (assignment at intake).
 * The dispatcher registers it at bootstrap: it knows the strategy, the hub-wide cap and the
 * routing rules a task at intake must not bypass.
 */
export type IntakeAssignmentPolicy = (task: NewTask) => boolean | Promise<boolean>;

export type BatchItemResult =
  { index: number; success: true; row: TaskRow; created: boolean } | { index: number; success: false; error: AppError };

/** Task intake: single and batch submissions (group-committed), idempotency keys, tasks that await a plugin. */
@Injectable()
export class TaskIntakeService {
  private readonly intake: TaskIntake;
  private assignAtIntake?: IntakeAssignmentPolicy;
  private readonly fastValidator = new CreateTaskFastValidator();

  constructor(
    private readonly repo: TasksRepository,
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly plugins: PluginsService,
    private readonly announce: TaskAnnouncer,
    private readonly tenantLimit: TenantTaskLimit,
    assignments: TaskAssignmentsRepository,
  ) {
    this.intake = new TaskIntake(repo, assignments);
  }

  /** The dispatcher's say on assignment at intake (none: every task waits for a dispatch round). */
  allowAssignmentAtIntake(policy: IntakeAssignmentPolicy): void {
    this.assignAtIntake = policy;
  }

  async submit(dto: CreateTaskDto, idempotencyHeader?: string): Promise<SubmitResult> {
    await this.tenantLimit.admitOne();
    const task = this.newTask(dto, idempotencyHeader);
    const startedAt = tracingEnabled() ? spanClock() : 0;
    if (dto.awaits_callback !== undefined) return this.submitAwaiting(dto, task);
    const direct = task.run_at === null && this.assignAtIntake !== undefined && (await this.assignAtIntake(task));
    const result = await this.intake.submit(task, direct);
    if (result.created) {
      if (startedAt) traceIntake(result.row, startedAt, currentTraceparent(), currentTracestate());
      this.events.publish('task.created', { task: result.row });
      if (result.vocabulary) this.events.publish('task.assigned', { task: result.row, vocabulary: result.vocabulary });
      else this.announce.ready(1);
    }
    return { row: result.row, created: result.created };
  }

  /**
   * A task that awaits a plugin (`awaits_callback`): inserted on its own (not through the
   * batched intake), straight to running under `plugin:<name>`; never dispatched.
   */
  private async submitAwaiting(dto: CreateTaskDto, task: NewTask): Promise<SubmitResult> {
    const named = dto.awaits_callback as string;
    if (dto.run_at !== undefined)
      throw AppError.validation('run_at', 'a task awaiting a plugin starts waiting at once: run_at is not allowed');
    // Kept as the plugin is registered (names match case-insensitively): its holder is one string.
    const plugin = await this.plugins.canonicalName(named);
    if (plugin === undefined) throw AppError.validation('awaits_callback', `unknown plugin: ${named}`);
    const startedAt = tracingEnabled() ? spanClock() : 0;
    const row = await this.repo.insertAwaiting(task, plugin, pluginHolder(plugin));
    if (row) {
      if (startedAt) traceIntake(row, startedAt, currentTraceparent(), currentTracestate());
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
      // The compiled check passes the items class-validator would pass; the others are validated
      // by class-validator itself, for its error answer (or, when the check was not sure, a pass).
      let dto: CreateTaskDto;
      if (this.fastValidator.isValid(item as Record<string, unknown>)) dto = item as CreateTaskDto;
      else {
        // CreateTaskDto has no nested types to transform: a prototype swap is all class-validator needs.
        dto = Object.assign(Object.create(CreateTaskDto.prototype) as CreateTaskDto, item);
        const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
        if (errors.length) {
          results[index] = { index, success: false, error: validationError(errors) };
          return;
        }
      }
      if (dto.awaits_callback !== undefined) awaiting.push({ index, dto });
      // Time-ordered ids: a batch's rows go to the right end of the indexes that end in id (task-id.ts).
      else valid.push({ index, task: this.newTask(dto) });
    });
    // The tenant's max_tasks counts each item: those past it are refused, in item order.
    const { room, max } = await this.tenantLimit.room(valid.length + awaiting.length);
    if (room < valid.length + awaiting.length) {
      const admitted = new Set(
        [...valid, ...awaiting]
          .map((v) => v.index)
          .sort((a, b) => a - b)
          .slice(0, room),
      );
      const refuse = (index: number): boolean => {
        if (admitted.has(index)) return false;
        results[index] = { index, success: false, error: tenantLimitExceeded(max as number) };
        return true;
      };
      valid.splice(0, valid.length, ...valid.filter((v) => !refuse(v.index)));
      awaiting.splice(0, awaiting.length, ...awaiting.filter((a) => !refuse(a.index)));
    }
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
      // Rows as the database returns them (insertMany can build them from the inputs instead,
      // ~20 µs less per task, but a flood of large batches then grew the hub's heap past the edge
      // suite's bound for stalled consumers: edge-faults, 92-110 MB against 44-56 MB).
      const startedAt = tracingEnabled() ? spanClock() : 0;
      const inserted = await this.intake.insert(valid.map((v) => v.task));
      inserted.forEach((r, i) => {
        results[valid[i].index] = { index: valid[i].index, success: true, ...r };
      });
      const created = inserted.filter((r) => r.created);
      if (startedAt) {
        const [parent, state] = [currentTraceparent(), currentTracestate()];
        for (const r of created) traceIntake(r.row, startedAt, parent, state);
      }
      created.forEach((r) => this.events.publish('task.created', { task: r.row }));
      this.announce.ready(created.length);
    }
    return results;
  }

  private newTask(dto: CreateTaskDto, idempotencyHeader?: string, id: string = timeOrderedUuid()): NewTask {
    return {
      id,
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
      concurrency_key: concurrencyKeyOf(dto),
      ...intakeContext(),
    };
  }
}

/**
 * The trace context a new task keeps (docs/observability.md, "Traces"): its intake span's, a
 * child of the submitting call's context (a new trace when there is none: a schedule firing).
 */
function intakeContext(): { traceparent: string; tracestate: string | null } {
  const parent = parseTraceparent(currentTraceparent());
  return {
    traceparent: formatTraceparent({
      traceId: parent?.traceId ?? newTraceId(),
      spanId: newSpanId(),
      flags: parent?.flags ?? 1,
    }),
    tracestate: (parent && currentTracestate()) || null,
  };
}
