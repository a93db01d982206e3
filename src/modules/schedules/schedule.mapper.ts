import type { ScheduleView } from './dto/schedule.dto.js';
import type { ScheduleRow } from './schedule.types.js';

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

export function mapSchedule(r: ScheduleRow): ScheduleView {
  return {
    schedule_id: r.id,
    id: r.id,
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    at: iso(r.at),
    task: r.task as Record<string, unknown> | null,
    notification: r.notification,
    enabled: r.enabled,
    next_run_at: iso(r.next_run_at),
    last_run_at: iso(r.last_run_at),
    last_task_id: r.last_task_id,
    runs: r.runs,
    last_error: r.last_error,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  };
}
