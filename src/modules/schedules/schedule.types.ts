import type { CreateTaskDto } from '../tasks/dto/create-task.dto.js';

export const SEVERITIES = ['info', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What a notification schedule pushes (`hub.notification`, source `schedule`). */
export interface ScheduledNotification {
  message: string;
  severity?: Severity;
  node_id?: string;
  task_id?: string;
}

/** A row of `schedules`. */
export interface ScheduleRow {
  id: string;
  tenant_id: string;
  name: string | null;
  cron: string | null;
  timezone: string;
  at: Date | null;
  /** The body of a POST /api/v1/tasks, as validated when the schedule was written. */
  task: CreateTaskDto | null;
  notification: ScheduledNotification | null;
  enabled: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_task_id: string | null;
  runs: number;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The columns a create or an update writes (the service has checked them together). */
export interface ScheduleInput {
  name: string | null;
  cron: string | null;
  timezone: string;
  at: Date | null;
  task: CreateTaskDto | null;
  notification: ScheduledNotification | null;
  enabled: boolean;
  next_run_at: Date | null;
}

/** What firing one due row did; written back in the claim's transaction. */
export interface FireOutcome {
  id: string;
  /** The slot it fired (the row's next_run_at when claimed): the compare-and-set value. */
  slot: Date;
  next_run_at: Date | null;
  /** False for a spent one-shot. */
  enabled: boolean;
  /** Set when it fired; absent when it could not (last_error says why). */
  fired: boolean;
  task_id: string | null;
  error: string | null;
}
