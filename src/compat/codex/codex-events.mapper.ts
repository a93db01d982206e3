import { priorityName, TASK_STATES, type TaskState } from '../../modules/tasks/task.types.js';
import { toCodexStatus } from './codex.mapper.js';
import type { CodexTaskEventData } from '../../contracts/sockets/ws-stream.js';

const isTaskState = (v: unknown): v is TaskState =>
  typeof v === 'string' && (TASK_STATES as readonly string[]).includes(v);

/** A printable message for a task error (the seed prints `${message.data.error}`). */
export function errorMessage(error: unknown): string | null {
  if (error === null || error === undefined) return null;
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message;
  return JSON.stringify(error);
}

/**
 * A client event's data as the Codex `/ws` stream sends it: `status` in the seed's words
 * (`queued`, …), `priority` as its name (`"medium"`), `error` a string with the structure
 * kept under `error_detail`. Other keys pass through.
 */
export function codexEventData<T extends object>(data: T): CodexTaskEventData<T> {
  const out = { ...data } as Record<string, unknown>;
  if (isTaskState(out.status)) out.status = toCodexStatus(out.status);
  if (typeof out.priority === 'number') out.priority = priorityName(out.priority);
  if ('error' in out && typeof out.error !== 'string' && out.error !== null && out.error !== undefined) {
    out.error_detail = out.error;
    out.error = errorMessage(out.error);
  }
  return out as CodexTaskEventData<T>;
}
