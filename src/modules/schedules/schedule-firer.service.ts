import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { validateSync } from 'class-validator';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { Periodic } from '../../common/periodic.js';
import { validationError } from '../../common/validation.js';
import { AppConfig } from '../../config/app-config.js';
import { runAsTenant } from '../../database/tenant-context.js';
import { CreateTaskDto } from '../tasks/dto/create-task.dto.js';
import { TaskIntakeService } from '../tasks/task-intake.service.js';
import { nextFireTime, parseCron } from './cron.js';
import type { FireOutcome, ScheduleRow } from './schedule.types.js';
import { SchedulesRepository } from './schedules.repository.js';

const BATCH = 100;

/** The idempotency key of one fire: a fire repeated after a crash finds the task it made. */
export const fireKey = (scheduleId: string, slot: Date): string => `schedule:${scheduleId}:${slot.toISOString()}`;

/**
 * Fires due schedules (docs/schedules.md). Every SCHEDULES_POLL_MS each hub claims due rows
 * (SKIP LOCKED: one hub per slot), submits each task through the tasks intake (a normal task,
 * `metadata.schedule_id`, idempotency key from the schedule and the slot) or publishes the
 * notification, and moves next_run_at on from the later of the slot and now: slots missed while
 * no hub ran fire once, not once each.
 */
@Injectable()
export class ScheduleFirer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ScheduleFirer');
  private readonly periodic = new Periodic('schedule poll', this.logger, () => this.poll());

  constructor(
    private readonly repo: SchedulesRepository,
    private readonly intake: TaskIntakeService,
    private readonly events: EventBus,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // At once too: what came due while no hub ran fires at start-up.
    if (this.config.SCHEDULES_POLL_MS > 0) this.periodic.start(this.config.SCHEDULES_POLL_MS, true);
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }

  /** Fires every due schedule, a batch per transaction; returns how many were claimed. */
  async poll(): Promise<number> {
    let claimed = 0;
    for (;;) {
      // Notifications go out after the commit: a rolled-back claim fires again, and must not have told anyone.
      const notices: ScheduleRow[] = [];
      const n = await this.repo.claimDue(BATCH, (rows) =>
        Promise.all(rows.map((row) => this.fire(row, new Date(), notices))),
      );
      notices.forEach((row) => this.notify(row));
      claimed += n;
      if (n < BATCH) return claimed;
    }
  }

  private async fire(row: ScheduleRow, now: Date, notices: ScheduleRow[]): Promise<FireOutcome> {
    const slot = row.next_run_at as Date;
    const outcome: FireOutcome = {
      id: row.id,
      slot,
      next_run_at: null,
      enabled: false,
      fired: false,
      task_id: null,
      error: null,
    };
    if (row.cron !== null) {
      try {
        // From the later of the slot and now: after an outage the missed slots are not replayed.
        const after = new Date(Math.max(now.getTime(), slot.getTime()));
        outcome.next_run_at = nextFireTime(parseCron(row.cron), after, row.timezone);
      } catch (e) {
        // Checked when written; a rule that changed since stops this schedule, not the poller.
        outcome.error = `cron: ${(e as Error).message}`;
      }
      outcome.enabled = outcome.next_run_at !== null;
    }
    if (row.notification) {
      notices.push(row);
      outcome.fired = true;
      return outcome;
    }
    try {
      outcome.task_id = await this.submit(row, slot);
      outcome.fired = true;
    } catch (e) {
      // The task was refused (a tenant limit, a plugin gone): the slot passes, the schedule says why.
      if (!(e instanceof AppError)) throw e;
      const field = e.details?.field === undefined ? '' : ` ${String(e.details.field)}: ${String(e.details.message)}`;
      outcome.error = `${e.code}: ${e.message}${field}`;
      this.logger.warn(`schedule ${row.id} could not start its task: ${outcome.error}`);
    }
    return outcome;
  }

  private async submit(row: ScheduleRow, slot: Date): Promise<string> {
    const body = row.task as CreateTaskDto;
    const dto = Object.assign(Object.create(CreateTaskDto.prototype) as CreateTaskDto, body, {
      metadata: { ...body.metadata, schedule_id: row.id, scheduled_for: slot.toISOString() },
      idempotency_key: fireKey(row.id, slot),
    });
    const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
    if (errors.length) throw validationError(errors);
    // In the schedule's tenant: the task is its tenant's, under its limits.
    const { row: task } = await runAsTenant(row.tenant_id, () => this.intake.submit(dto));
    return task.id;
  }

  private notify(row: ScheduleRow): void {
    const n = row.notification as NonNullable<ScheduleRow['notification']>;
    const severity = n.severity ?? 'info';
    runAsTenant(row.tenant_id, () => {
      this.events.publish('hub.notification', {
        severity,
        source: 'schedule',
        message: n.message,
        schedule_id: row.id,
        scheduled_for: (row.next_run_at as Date).toISOString(),
        ...(row.name ? { schedule_name: row.name } : {}),
        ...(n.node_id ? { node_id: n.node_id } : {}),
        ...(n.task_id ? { task_id: n.task_id } : {}),
        tenant_id: row.tenant_id,
      });
      // The Apex log channel shows alerts and log lines, not notifications: a line of its own.
      this.events.publish('hub.log', {
        time: new Date().toISOString(),
        level: severity === 'warning' ? 'warn' : 'info',
        source: 'schedule',
        message: n.message,
        ...(n.node_id ? { node_id: n.node_id } : {}),
        ...(n.task_id ? { task_id: n.task_id } : {}),
        data: { schedule_id: row.id },
      });
    });
  }
}
