import type { HubSchemas } from '../../sdk/hub-client.js';
import { json, keyValues, table, truncate } from '../format.js';

/** The hub's answers, typed by the contract (openapi.json → src/sdk/http/openapi-types.ts). */
export type TaskView = HubSchemas['TaskView'];
export type TaskList = HubSchemas['TaskListView'];
export type TaskLog = HubSchemas['TaskEventView'];
export type TaskLogs = HubSchemas['TaskLogsView'];
/** The body of POST /api/v1/tasks. */
export type CreateTask = HubSchemas['CreateTaskDto'];

export function renderTask(t: TaskView): string {
  return keyValues([
    ['task_id', t.task_id],
    ['type', t.type],
    ['status', `${t.status} (${t.state})`],
    ['priority', t.priority],
    ['tags', t.tags.join(', ')],
    ['work_directory', t.work_directory],
    ['worker', t.worker_id ?? t.node_id],
    ['attempt', t.attempt],
    ['retries', `${t.retry_count}/${t.max_retries}`],
    ['progress', t.progress_message ? `${t.progress}% ${t.progress_message}` : `${t.progress}%`],
    ['created_at', t.created_at],
    ['started_at', t.started_at],
    ['completed_at', t.completed_at],
    ['reason', t.reason ?? undefined],
    ['prompt', truncate(t.prompt, 200)],
    ['result', json(t.result)],
    ['error', json(t.error)],
  ]);
}

export function renderTaskList(list: TaskList): string {
  const { tasks, pagination: p } = list;
  if (tasks.length === 0) return `no tasks (total ${p.total})`;
  const rows = tasks.map((t) => [
    t.task_id,
    t.status,
    t.state,
    t.priority,
    t.type,
    t.attempt,
    t.created_at,
    truncate(t.prompt, 50),
  ]);
  const body = table(['TASK_ID', 'STATUS', 'STATE', 'PRIORITY', 'TYPE', 'ATTEMPT', 'CREATED_AT', 'PROMPT'], rows);
  const end = p.offset + tasks.length;
  return `${body}\n${p.offset + 1}-${end} of ${p.total}${p.has_more ? ` (more: --offset ${end})` : ''}`;
}

export function renderTaskLogs(logs: TaskLogs): string {
  if (logs.logs.length === 0) return `no log entries for ${logs.task_id}`;
  const rows = logs.logs.map((l) => [l.timestamp, l.level, l.type, l.attempt, l.message]);
  return table(['TIMESTAMP', 'LEVEL', 'TYPE', 'ATTEMPT', 'MESSAGE'], rows);
}
