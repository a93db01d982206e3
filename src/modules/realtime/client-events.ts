import type { DomainEvents } from '../../common/events/event-bus.js';
import type { ClientEventData, ClientEventType, TaskEventData } from '../../contracts/sockets/events.js';
import type { TaskRow } from '../tasks/task.types.js';
import { publishingTenant } from './tenant-delivery.js';

export type { ClientEventType } from '../../contracts/sockets/events.js';

/** What clients (the /events namespace and the /ws stream) are told: one push of the contract. */
export type ClientEvent = {
  [K in ClientEventType]: {
    type: K;
    /** The task it is about (null for node events, and for notices about no task). */
    taskId: string | null;
    /** Whose it is (see tenant-delivery.ts): the task's tenant, a node's, a notice's; null: hub-wide. */
    tenantId: string | null;
    data: ClientEventData[K];
  };
}[ClientEventType];

type TaskEventType =
  'task_created' | 'task_started' | 'task_progress' | 'task_completed' | 'task_failed' | 'task_cancelled';
/** What a task push adds to TaskEventData. */
type Extra<K extends TaskEventType> = Omit<ClientEventData[K], keyof TaskEventData>;

/** Both spellings of the id: snake_case for the canonical API, camelCase for Codex clients. */
function taskData(task: TaskRow): TaskEventData {
  return {
    taskId: task.id,
    task_id: task.id,
    status: task.status,
    type: task.type,
    progress: task.progress,
    message: task.progress_message,
    attempt: task.attempt,
    nodeId: task.node_id,
    workerId: task.worker_id,
    timestamp: new Date().toISOString(),
  };
}

type Subscribe = <K extends keyof DomainEvents>(event: K, handler: (payload: DomainEvents[K]) => void) => () => void;

/**
 * Subscribes `deliver` to every domain event a client may see; returns the unsubscribe functions.
 * `wanted` says whether anyone may listen (local clients, or other hubs through Redis): without
 * listeners no payload is built (a per-task cost under load).
 */
export function relayClientEvents(
  on: Subscribe,
  deliver: (e: ClientEvent) => void,
  wanted: () => boolean = () => true,
): (() => void)[] {
  const task = <K extends TaskEventType>(type: K, t: TaskRow, extra: Extra<K>): void => {
    // TaskEventData plus Extra<K> is ClientEventData[K]; TS does not correlate a generic K with the union.
    if (wanted())
      deliver({ type, taskId: t.id, tenantId: t.tenant_id, data: { ...taskData(t), ...extra } } as ClientEvent);
  };
  return [
    on('task.created', ({ task: t }) => task('task_created', t, { prompt: t.prompt, priority: t.priority })),
    on('task.started', ({ task: t }) => task('task_started', t, {})),
    on('task.assigned', ({ task: t }) => task('task_started', t, {})),
    on('task.progress', ({ task: t }) => task('task_progress', t, {})),
    on('task.completed', ({ task: t }) => task('task_completed', t, { result: t.result })),
    on('task.failed', ({ task: t, retrying }) => task('task_failed', t, { error: t.error, retrying })),
    on('task.cancelled', ({ task: t }) => task('task_cancelled', t, { reason: t.cancel_reason })),
    on('node.online', ({ nodeId, tenantId }) =>
      deliver({
        type: 'node_online',
        taskId: null,
        tenantId: tenantId ?? publishingTenant(),
        data: { nodeId, node_id: nodeId, timestamp: new Date().toISOString() },
      }),
    ),
    on('node.offline', ({ nodeId, reason, tenantId }) =>
      deliver({
        type: 'node_offline',
        taskId: null,
        tenantId: tenantId ?? publishingTenant(),
        data: { nodeId, node_id: nodeId, reason, timestamp: new Date().toISOString() },
      }),
    ),
    // Seed 001: `{type, data: {severity, message, …ids}}`.
    on('hub.notification', (n) =>
      deliver({
        type: 'notification',
        taskId: n.task_id ?? null,
        tenantId: n.tenant_id ?? publishingTenant(),
        data: { ...n, timestamp: new Date().toISOString() },
      }),
    ),
    on('hub.alert', (a) =>
      deliver({
        type: 'alert',
        taskId: a.task_id ?? null,
        tenantId: a.tenant_id ?? publishingTenant(),
        data: { ...a, timestamp: new Date().toISOString() },
      }),
    ),
  ];
}
