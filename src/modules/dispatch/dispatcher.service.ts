import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { EventBus } from '../../common/events/event-bus.js';
import { DatabaseStatus } from '../../database/database-status.js';
import {
  currentTenantSetting,
  DEFAULT_TENANT,
  NO_TENANT,
  runAsSystem,
  SYSTEM_TENANT,
} from '../../database/tenant-context.js';
import { RoutingService } from '../routing/routing.service.js';
import type { Strategy as RuleStrategy } from '../routing/rule-engine.js';
import { TaskIntakeService } from '../tasks/task-intake.service.js';
import { type NewTask, priorityName } from '../tasks/task.types.js';
import type { Strategy } from './assignment.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { DispatchMetrics } from './dispatch-metrics.js';
import { type AssignmentRef, DispatchRound, UncertainAssignment } from './dispatch-round.js';

const BATCH = 200;
const SHORT_ROUND_RETRY_MS = 20;

/** Routing-rule strategies in dispatcher terms (weighted and hash fall back to least-loaded for tasks). */
const DISPATCH_STRATEGY_OF: Record<RuleStrategy, Strategy> = {
  round_robin: 'round-robin',
  least_connections: 'least-loaded',
  random: 'random',
  weighted: 'least-loaded',
  hash: 'least-loaded',
};

/**
 * Pushes ready tasks to connected nodes. Event-driven: a submission, a re-queue or a freed
 * slot kicks it; kicks within one tick coalesce into one round; one timer is armed for the
 * next delayed task; a slow safety tick covers what another process made ready.
 */
@Injectable()
export class Dispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Dispatcher');
  private scheduled = false;
  private running?: Promise<void>;
  private again = false;
  /** Tasks were just made ready: the next round can skip the "anything ready?" probe. */
  private readyHint = false;
  private cursor = 0;
  private safetyTimer?: NodeJS.Timeout;
  private delayTimer?: NodeJS.Timeout;
  private delayAt = Infinity;
  private stopped = false;
  /** Assignments of rounds that died around their COMMIT: delivered once the database confirms them. */
  private uncertain: AssignmentRef[] = [];
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly round: DispatchRound,
    private readonly taskQueries: TaskQueriesService,
    private readonly events: EventBus,
    private readonly config: AppConfig,
    private readonly routing: RoutingService,
    private readonly database: DatabaseStatus,
    private readonly intake: TaskIntakeService,
    private readonly metrics: DispatchMetrics,
  ) {}

  onApplicationBootstrap(): void {
    this.intake.allowAssignmentAtIntake((task) => this.mayAssignAtIntake(task));
    this.unsubscribe.push(
      this.events.on('tasks.ready', ({ runAt }) => {
        if (runAt && runAt.getTime() > Date.now()) return this.armDelay(runAt.getTime());
        this.readyHint = true;
        this.kick();
      }),
      this.events.on('node.capacity', () => this.kick()),
      // Under TASK_MAX_ACTIVE any finished task (a pull worker's too) may free a hub-wide slot; a
      // finished task of a concurrency key may free its key's (a node's end also frees a node slot).
      ...(['task.completed', 'task.failed', 'task.cancelled'] as const).map((e) =>
        this.events.on(e, ({ task }) => {
          if (this.config.TASK_MAX_ACTIVE > 0 || task.concurrency_key) this.kick();
        }),
      ),
    );
    // Rounds that failed during a database outage left ready work behind, and maybe
    // assignments that committed without their nodes being told.
    this.database.onUp(() => {
      void this.confirmUncertain();
      this.kick();
    });
    this.safetyTimer = setInterval(() => this.safetyTick(), this.config.DISPATCH_SAFETY_TICK_MS);
    this.safetyTimer.unref();
    this.safetyTick();
  }

  /** Ask for a dispatch round soon; many kicks in one tick make one round. */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.trigger();
    });
  }

  /** A round that starts after this call, awaited (the seed 004 dispatch endpoint, tests). */
  async runRound(): Promise<void> {
    while (this.running) await this.running;
    this.trigger();
    await this.running;
  }

  /** Start a round now, or have the running one go again when it ends. */
  private trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // As the system, whoever kicked: a kick inherits its caller's tenant context (a request's,
    // a device's), and a round under tenant A's would see only A's tasks and nodes, leaving
    // other tenants' ready work to the safety tick.
    this.running = runAsSystem(() => this.loop())
      .catch((e: unknown) => {
        if (e instanceof UncertainAssignment) {
          this.uncertain.push(...e.rows);
          if (!this.database.failed(e.cause)) this.logger.error({ err: e.cause }, 'dispatch round failed');
          return;
        }
        if (!this.database.failed(e)) this.logger.error({ err: e }, 'dispatch round failed');
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }

  private async loop(): Promise<void> {
    for (;;) {
      const probe = !this.readyHint;
      this.readyHint = false;
      const room = await this.roomLeft();
      if (room <= 0) break;
      const router = await this.routing.taskRouter();
      const timed = this.metrics.round.startTimer(); // taskhub_dispatch_round_seconds (a failed round too)
      const { assigned, cursor, short, opensAt } = await this.round
        .assignBatch(room, this.config.DISPATCH_STRATEGY, this.cursor, probe, (t) => {
          const rule = router(
            { type: t.type, priority: priorityName(t.priority), tags: t.tags, metadata: t.metadata },
            t.tenant_id,
          );
          return rule ? { tags: rule.target_tags, strategy: DISPATCH_STRATEGY_OF[rule.target_strategy] } : undefined;
        })
        .finally(() => timed());
      this.cursor = cursor % 1_000_000;
      for (const a of assigned) this.events.publish('task.assigned', a);
      // A round that handed out work leaves a queue that is probably not empty: the next round
      // (woken by a freed slot) can skip the probe too.
      this.readyHint = assigned.length > 0;
      // Some planned assignments met a row locked by someone else: they are still pending, so look again shortly.
      if (short) this.armDelay(Date.now() + SHORT_ROUND_RETRY_MS);
      // A concurrency key held by its rolling window: one timer for when it opens, no polling.
      if (opensAt !== undefined) this.armDelay(opensAt);
      if (assigned.length < room) break;
    }
  }

  /**
   * Whether a submission may skip the round (assignment at intake: its insert takes the
   * least-loaded open node when nothing waits before it). Only where the round would decide the
   * same way on its own: the least-loaded strategy, no hub-wide cap to count against, and no
   * routing rule for the task (rules are matched here, in memory; the statement cannot).
   */
  private async mayAssignAtIntake(task: NewTask): Promise<boolean> {
    if (this.stopped || !this.config.DISPATCH_AT_INTAKE || !this.database.isUp) return false;
    if (this.config.TASK_MAX_ACTIVE > 0 || this.config.DISPATCH_STRATEGY !== 'least-loaded') return false;
    const setting = currentTenantSetting();
    if (setting === NO_TENANT) return false;
    const router = await this.routing.taskRouter();
    const rule = router(
      { type: task.type, priority: priorityName(task.priority), tags: task.tags, metadata: task.metadata },
      setting === SYSTEM_TENANT ? DEFAULT_TENANT : setting,
    );
    return rule === null;
  }

  /**
   * How many tasks one round may hand out: BATCH, or fewer under the hub-wide TASK_MAX_ACTIVE
   * (seed 000 `runner.maxConcurrency`). Counted before the round, so hub processes dispatching
   * at the same instant may pass it by what they hand out together.
   */
  private async roomLeft(): Promise<number> {
    const cap = this.config.TASK_MAX_ACTIVE;
    if (cap === 0) return BATCH;
    return Math.min(BATCH, cap - (await this.taskQueries.countActive()));
  }

  /** Delivers the uncertain assignments that did commit; the rest were rolled back and are still pending. */
  private async confirmUncertain(): Promise<void> {
    const rows = this.uncertain.splice(0);
    if (rows.length === 0) return;
    try {
      const confirmed = await runAsSystem(() => this.round.confirmAssignments(rows));
      if (confirmed.length)
        this.logger.warn(`${confirmed.length} assignment(s) committed during a database outage delivered now`);
      for (const a of confirmed) this.events.publish('task.assigned', a);
    } catch (e) {
      this.uncertain.push(...rows); // still down: the next recovery tries again
      this.database.failed(e);
    }
  }

  /**
   * The slow net under the events: a round, and the timer for the next delayed task
   * (tasks re-queued with a backoff by this process arm it through their event already).
   */
  private safetyTick(): void {
    this.kick();
    if (this.uncertain.length && this.database.isUp) void this.confirmUncertain();
    this.taskQueries.nextRunAt().then(
      (next) => next && this.armDelay(next.getTime()),
      (e: unknown) => this.logger.error({ err: e }, 'next run_at lookup failed'),
    );
  }

  /** One timer for the earliest delayed task we know of. */
  private armDelay(at: number): void {
    if (this.stopped || at >= this.delayAt) return;
    clearTimeout(this.delayTimer);
    this.delayAt = at;
    this.delayTimer = setTimeout(
      () => {
        this.delayAt = Infinity;
        this.kick();
      },
      Math.max(0, at - Date.now()) + 5,
    );
    this.delayTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.unsubscribe.forEach((u) => u());
    clearInterval(this.safetyTimer);
    clearTimeout(this.delayTimer);
    await this.running;
  }
}
