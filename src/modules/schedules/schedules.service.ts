import { Injectable } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import { CronError, nextFireTime, parseCron } from './cron.js';
import type { CreateScheduleDto, UpdateScheduleDto } from './dto/schedule.dto.js';
import type { ScheduleInput, ScheduleRow } from './schedule.types.js';
import { SchedulesRepository } from './schedules.repository.js';
import { canonicalTimeZone, wallToInstant } from './zoned-time.js';

/** An ISO time that names its offset (`Z`, `+02:00`); one without is a wall time of the schedule's zone. */
const HAS_OFFSET = /(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Create, read, change and delete schedules; each write checks the definition as a whole. */
@Injectable()
export class SchedulesService {
  constructor(private readonly repo: SchedulesRepository) {}

  async create(dto: CreateScheduleDto): Promise<ScheduleRow> {
    const enabled = dto.enabled ?? true;
    const timezone = zoneOf(dto.timezone ?? 'UTC');
    const at = dto.at === undefined ? null : futureAt(dto.at, timezone);
    const input: ScheduleInput = {
      name: dto.name ?? null,
      cron: dto.cron ?? null,
      timezone,
      at,
      task: dto.task ?? null,
      notification: dto.notification ?? null,
      enabled,
      next_run_at: null,
    };
    input.next_run_at = firstRun(input);
    return this.repo.insert(input);
  }

  async list(limit: number, offset: number): Promise<{ rows: ScheduleRow[]; total: number }> {
    return this.repo.list(limit, offset);
  }

  async get(id: string): Promise<ScheduleRow> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Schedule', id);
    return row;
  }

  /**
   * Fields not given keep their value; `cron` replaces `at` (and the other way round), `task`
   * replaces `notification`. The next run is computed again (from now) when the timing or
   * `enabled` changes; re-enabling a one-shot needs an `at` still ahead.
   */
  async update(id: string, dto: UpdateScheduleDto): Promise<ScheduleRow> {
    const row = await this.get(id);
    const timezone = dto.timezone === undefined ? row.timezone : zoneOf(dto.timezone);
    const input: ScheduleInput = {
      name: dto.name ?? row.name,
      cron: dto.cron ?? (dto.at !== undefined ? null : row.cron),
      timezone,
      at: dto.at !== undefined ? futureAt(dto.at, timezone) : dto.cron !== undefined ? null : row.at,
      task: dto.task ?? (dto.notification !== undefined ? null : row.task),
      notification: dto.notification ?? (dto.task !== undefined ? null : row.notification),
      enabled: dto.enabled ?? row.enabled,
      next_run_at: row.next_run_at,
    };
    const retimed =
      dto.cron !== undefined ||
      dto.at !== undefined ||
      dto.timezone !== undefined ||
      (dto.enabled !== undefined && dto.enabled !== row.enabled);
    const next = firstRun(input);
    if (retimed && next !== null && next.getTime() <= Date.now())
      throw AppError.validation('at', 'has passed (the one-shot fired): give a new at to fire again');
    if (retimed) input.next_run_at = next;
    const updated = await this.repo.update(id, input);
    if (!updated) throw AppError.notFound('Schedule', id);
    return updated;
  }

  async remove(id: string): Promise<ScheduleRow> {
    const row = await this.repo.delete(id);
    if (!row) throw AppError.notFound('Schedule', id);
    return row;
  }
}

function zoneOf(name: string): string {
  const zone = canonicalTimeZone(name);
  if (!zone)
    throw AppError.validation('timezone', `unknown time zone ${name}: give an IANA name such as Europe/Berlin`);
  return zone;
}

function futureAt(text: string, timezone: string): Date {
  const at = HAS_OFFSET.test(text)
    ? new Date(text)
    : new Date(wallToInstant(Date.parse(text.includes('T') ? `${text}Z` : `${text}T00:00:00Z`), timezone));
  if (Number.isNaN(at.getTime())) throw AppError.validation('at', 'must be an ISO 8601 time');
  if (at.getTime() <= Date.now())
    throw AppError.validation('at', `must be in the future: ${at.toISOString()} has passed`);
  return at;
}

/**
 * Checks the definition as a whole (exactly one of cron/at and of task/notification, a cron
 * that parses and fires again, a task body the schedule can repeat) and answers its next run
 * from now: null when disabled.
 */
function firstRun(s: ScheduleInput): Date | null {
  if ((s.cron === null) === (s.at === null)) throw AppError.validation('cron', 'give exactly one of cron and at');
  if ((s.task === null) === (s.notification === null))
    throw AppError.validation('task', 'give exactly one of task and notification');
  if (s.task?.idempotency_key !== undefined)
    throw AppError.validation('task.idempotency_key', 'each fire gets its own key (schedule id + fire time)');
  if (s.task?.run_at !== undefined) throw AppError.validation('task.run_at', 'the schedule says when the task starts');
  let next: Date | null = s.at;
  if (s.cron !== null) {
    try {
      next = nextFireTime(parseCron(s.cron), new Date(), s.timezone);
    } catch (e) {
      if (e instanceof CronError) throw AppError.validation('cron', `invalid cron expression: ${e.message}`);
      throw e;
    }
    if (!next) throw AppError.validation('cron', 'this expression never fires');
  }
  return s.enabled ? next : null;
}
