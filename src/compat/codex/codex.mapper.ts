import type { CreateTaskDto } from '../../modules/tasks/dto/create-task.dto.js';
import type { ListTasksQuery } from '../../modules/tasks/dto/list-tasks.query.js';
import { priorityName, type TaskEventRow, type TaskRow, type TaskState } from '../../modules/tasks/task.types.js';
import type { CodexListQuery, CodexSort, CodexStatus, CodexSubmitTaskDto } from './codex.dto.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Seed 000 success body: `{success, data, message?, timestamp, requestId}`. */
export interface CodexOk<T> {
  success: true;
  data: T;
  message?: string;
  timestamp: string;
  requestId: string;
}

export function codexOk<T>(data: T, requestId: string, message?: string): CodexOk<T> {
  return { success: true, data, ...(message ? { message } : {}), timestamp: new Date().toISOString(), requestId };
}

const TO_CODEX: Record<TaskState, CodexStatus> = {
  pending: 'queued',
  dispatched: 'queued',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  timed_out: 'failed',
  cancelled: 'cancelled',
};

/** Hub status filter (as TasksService.list takes it) for each Codex status. */
const FROM_CODEX: Record<CodexStatus, string> = {
  queued: 'pending,dispatched',
  running: 'running',
  completed: 'completed',
  failed: 'failed,timed_out',
  cancelled: 'cancelled',
};

const SORT_COLUMN: Record<CodexSort, NonNullable<ListTasksQuery['sort']>> = {
  startTime: 'started_at',
  createdAt: 'created_at',
  completedAt: 'completed_at',
  priority: 'priority',
};

export const toCodexStatus = (s: TaskState): CodexStatus => TO_CODEX[s];

export function toCreateTask(dto: CodexSubmitTaskDto): CreateTaskDto {
  return {
    prompt: dto.prompt,
    environment: dto.environment,
    priority: dto.priority,
    files: dto.files,
    type: dto.type,
    metadata: dto.metadata,
    timeout_seconds: dto.timeout === undefined ? undefined : Math.ceil(dto.timeout / 1000),
  };
}

export function toListQuery(q: CodexListQuery): ListTasksQuery & { limit: number; offset: number } {
  const limit = q.limit ?? 50;
  const page = q.page ?? 1;
  return {
    status: q.status ? FROM_CODEX[q.status] : undefined,
    sort: SORT_COLUMN[q.sort ?? 'createdAt'],
    order: q.order,
    limit,
    offset: (page - 1) * limit,
  };
}

export function submitView(t: TaskRow): { taskId: string; status: CodexStatus; priority: string; estimatedDuration: number } {
  return {
    taskId: t.id,
    status: toCodexStatus(t.status),
    priority: priorityName(t.priority),
    // The seed's estimate would come from past processing times, which the hub does not keep cheaply per kind of
    // task; the honest upper bound we do know is the task's own timeout, so that is what we report (in ms).
    estimatedDuration: t.timeout_seconds * 1000,
  };
}

/** Milliseconds from start to end (now while still running); null if it never started. */
export function duration(t: TaskRow, now = new Date()): number | null {
  if (!t.started_at) return null;
  const end = t.completed_at ?? t.cancelled_at ?? (t.status === 'running' ? now : null);
  return end ? Math.max(0, end.getTime() - t.started_at.getTime()) : null;
}

export function statusView(t: TaskRow, now = new Date()): Record<string, unknown> {
  return {
    id: t.id,
    status: toCodexStatus(t.status),
    progress: t.progress,
    startTime: iso(t.started_at),
    duration: duration(t, now),
    result: t.result ?? null,
    error: t.error ?? null,
    priority: priorityName(t.priority),
    environment: t.environment,
    prompt: t.prompt,
    createdAt: iso(t.created_at),
    completedAt: iso(t.completed_at),
  };
}

export function listItemView(t: TaskRow): Record<string, unknown> {
  return {
    id: t.id,
    status: toCodexStatus(t.status),
    progress: t.progress,
    priority: priorityName(t.priority),
    startTime: iso(t.started_at),
    createdAt: iso(t.created_at),
  };
}

export function logView(e: TaskEventRow): { timestamp: string; level: string; type: string; message: string; attempt: number } {
  return { timestamp: e.at.toISOString(), level: e.level, type: e.type, message: e.message, attempt: e.attempt };
}
