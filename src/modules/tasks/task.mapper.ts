import { taskStepTraceparent } from '../../common/tracing/task-spans.js';
import { traceIdOf } from '../../common/tracing/traceparent.js';
import { tenantKey } from '../concurrency/concurrency-window.js';
import { isHeld, toOrchestratorStatus } from './task-state.js';
import { priorityName, type TaskEventRow, type TaskRow } from './task.types.js';
import type { TaskEventView, TaskView } from './dto/task.view.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The canonical wire shape of a task (snake_case; `status` in seed 002 words, `state` exact). */
/**
 * @param heldKeys the keys at a limit now (TaskQueriesService.heldKeysOf): a pending, ready task of
 *   one shows `waiting_on: "concurrency_key"`. Views built without it (a transition's answer) show null.
 */
export function mapTask(t: TaskRow, heldKeys?: ReadonlySet<string>): TaskView {
  return {
    task_id: t.id,
    type: t.type,
    prompt: t.prompt,
    data: t.data ?? null,
    priority: priorityName(t.priority),
    tags: t.tags,
    required_tags: t.required_tags,
    work_directory: t.work_directory,
    environment: t.environment,
    files: t.files ?? null,
    status: toOrchestratorStatus(t.status),
    state: t.status,
    target_node_id: t.target_node_id,
    worker_id: t.worker_id,
    node_id: t.node_id,
    attempt: t.attempt,
    retry_count: t.retry_count,
    max_retries: t.max_retries,
    timeout_seconds: t.timeout_seconds,
    progress: t.progress,
    progress_message: t.progress_message,
    result: t.result ?? null,
    error: t.error ?? null,
    messages: t.messages,
    metadata: t.metadata,
    idempotency_key: t.idempotency_key,
    concurrency_key: t.concurrency_key ?? null,
    waiting_on:
      t.status === 'pending' &&
      t.concurrency_key &&
      heldKeys?.has(tenantKey(t.tenant_id, t.concurrency_key)) &&
      t.run_at.getTime() <= Date.now()
        ? 'concurrency_key'
        : null,
    run_at: iso(t.run_at),
    lease_expires_at: iso(t.lease_expires_at),
    created_at: iso(t.created_at) as string,
    updated_at: iso(t.updated_at) as string,
    dispatched_at: iso(t.dispatched_at),
    started_at: iso(t.started_at),
    completed_at: iso(t.completed_at),
    cancelled_at: iso(t.cancelled_at),
    last_retry_at: iso(t.last_retry_at),
    reason: t.cancel_reason,
    awaits_callback: t.awaits_callback ?? null,
    trace_id: traceIdOf(t.traceparent),
    // The holder continues the trace under the attempt's run span (src/common/tracing/task-spans.ts).
    traceparent: isHeld(t.status) ? (taskStepTraceparent(t.traceparent, t.attempt, 'run') ?? null) : null,
  };
}

export function mapTaskEvent(e: TaskEventRow): TaskEventView {
  return {
    id: Number(e.id),
    timestamp: e.at.toISOString(),
    type: e.type,
    level: e.level,
    message: e.message,
    attempt: e.attempt,
    data: e.data ?? null,
  };
}
