import type { NodeVocabulary } from '../../common/events/event-bus.js';
import { seed004Time } from '../../compat/distributed/seed004-time.js';
import type { CancelTaskMessage, NewTaskMessage, TaskAssignMessage } from '../../contracts/sockets/device.js';
import { priorityName, type TaskRow } from '../tasks/task.types.js';
import { taskStepTraceparent } from '../../common/tracing/task-spans.js';

export type Assignment =
  { event: 'new_task'; data: NewTaskMessage } | { event: 'task_assign'; data: TaskAssignMessage };

/** `new_task` (seed 004) or `task_assign` (Apex) for a task handed to a node. */
export function assignmentMessage(task: TaskRow, vocabulary: NodeVocabulary): Assignment {
  const common = {
    task_id: task.id,
    task_type: task.type,
    prompt: task.prompt,
    priority: priorityName(task.priority),
    tags: task.tags,
    attempt: task.attempt,
    created_at: vocabulary === 'device' ? seed004Time(task.created_at) : task.created_at.toISOString(),
    timeout: task.timeout_seconds,
    metadata: task.metadata,
    messages: task.messages,
    // Beside the payload, for devices that trace: this attempt's run span (docs/observability.md).
    ...traceFields(task),
  };
  if (vocabulary === 'node') {
    return {
      event: 'task_assign',
      data: {
        type: 'task_assign',
        ...common,
        node_id: task.node_id,
        action: task.type,
        payload: task.data,
        timeout_seconds: task.timeout_seconds,
        callback: callbackOf(task),
      },
    };
  }
  return { event: 'new_task', data: { type: 'new_task', ...common, data: task.data } };
}

function traceFields(task: TaskRow): { traceparent?: string; tracestate?: string } {
  const traceparent = taskStepTraceparent(task.traceparent, task.attempt, 'run');
  if (!traceparent) return {};
  return task.tracestate ? { traceparent, tracestate: task.tracestate } : { traceparent };
}

export function cancelMessage(task: TaskRow): CancelTaskMessage {
  return { type: 'cancel_task', task_id: task.id, attempt: task.attempt, reason: task.cancel_reason };
}

/** Stop a hand-out the node no longer holds (revoked, or reported running but not held). */
export function revokeMessage(r: { task_id: string; attempt: number | null }, reason: string): CancelTaskMessage {
  return { type: 'cancel_task', task_id: r.task_id, attempt: r.attempt, reason };
}

/**
 * How the result comes back (seed 001 "回调方式"): over the channel (`ws`), or, for a task
 * whose metadata names a plugin, the path of that plugin's signed callback.
 */
function callbackOf(task: TaskRow): string {
  const plugin = task.metadata?.plugin;
  return typeof plugin === 'string' && plugin.length > 0
    ? `/plugin-callback/${encodeURIComponent(plugin)}/${task.id}`
    : 'ws';
}

/** `server_time`: the seed 004 form for a device (`device_register`), ISO 8601 UTC for a node. */
export function serverTime(vocabulary: NodeVocabulary | undefined): string {
  const now = new Date();
  return vocabulary === 'device' ? seed004Time(now) : now.toISOString();
}
