import { plainToInstance } from 'class-transformer';
import { isUUID, validateSync } from 'class-validator';
import { AppError } from '../../common/errors.js';
import { validationError } from '../../common/validation.js';
import type { CreateTaskDto } from '../../modules/tasks/dto/create-task.dto.js';
import type { ListTasksQuery } from '../../modules/tasks/dto/list-tasks.query.js';
import { priorityName, type TaskEventRow, type TaskRow, type TaskState } from '../../modules/tasks/task.types.js';
import {
  CODEX_SUBMIT_KEYS,
  type CodexListQuery,
  type CodexSort,
  type CodexStatus,
  CodexSubmitTaskDto,
} from './codex.dto.js';

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

/** Hub status filter (as TaskQueriesService.list takes it) for each Codex status. */
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

/** A Codex `:id` as a hub task id; anything that cannot be one is a missing task (404 TASK_NOT_FOUND). */
export function codexTaskId(id: string): string {
  if (!isUUID(id)) throw AppError.notFound('Task', id);
  return id;
}

/**
 * Validates a `POST /tasks` body: the documented keys as CodexSubmitTaskDto, every other key
 * (the seed's Python client passes `**kwargs`) kept for the task's `metadata`.
 */
export function parseSubmitBody(body: unknown): { dto: CodexSubmitTaskDto; extra: Record<string, unknown> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw AppError.validation('body', 'The body must be a JSON object');
  const known: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) (CODEX_SUBMIT_KEYS.includes(k) ? known : extra)[k] = v;
  const dto = plainToInstance(CodexSubmitTaskDto, known);
  const errors = validateSync(dto, { whitelist: true, forbidUnknownValues: false });
  if (errors.length > 0) throw validationError(errors);
  return { dto, extra };
}

export function toCreateTask(dto: CodexSubmitTaskDto, extra: Record<string, unknown> = {}): CreateTaskDto {
  const metadata = Object.keys(extra).length > 0 ? { ...extra, ...dto.metadata } : dto.metadata;
  return {
    prompt: dto.prompt,
    environment: dto.environment,
    priority: dto.priority,
    files: dto.files,
    type: dto.type,
    metadata,
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

/** `estimatedDuration` (ms) is the recent mean run time of tasks of the same type; absent without history. */
export function submitView(
  t: TaskRow,
  estimateMs: number | null,
): { taskId: string; status: CodexStatus; priority: string; estimatedDuration?: number } {
  return {
    taskId: t.id,
    status: toCodexStatus(t.status),
    priority: priorityName(t.priority),
    ...(estimateMs === null ? {} : { estimatedDuration: estimateMs }),
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

export function logView(e: TaskEventRow): {
  timestamp: string;
  level: string;
  type: string;
  message: string;
  attempt: number;
} {
  return { timestamp: e.at.toISOString(), level: e.level, type: e.type, message: e.message, attempt: e.attempt };
}
