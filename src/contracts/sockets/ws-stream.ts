/**
 * The raw WebSocket `/ws` (seed 000 Codex Father event stream): JSON text frames
 * `{type, data}` both ways. (With `service`, `tag`, `session_id` or `routing_hint` the same
 * path is the seed 003 agent-service proxy, whose frames are the service's own.)
 *
 * The maps give each frame type its `data` (raw channels have no callbacks).
 */
import type { ServerShutdown, SocketError } from './error.js';
import type { ClientEventData } from './events.js';
import type { AlertData, ChatChunkData, ChatCompletedData, NodeEventData, NotificationData } from './notices.js';
import type { PriorityName } from './tasks.js';

/** Task states in the seed's words (`queued` = pending or dispatched). */
export type CodexStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A task push in Codex words: status renamed, priority by name, `error` printable (structure in `error_detail`). */
export type CodexTaskEventData<T> = Omit<T, 'status' | 'priority' | 'error'> & {
  status: CodexStatus;
  priority?: PriorityName;
  error?: string | null;
  error_detail?: unknown;
};

export interface CodexTaskCounts {
  total: number;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** The initial `status` and the answer to `get_status` (also `GET /status` `data`). Uptime in ms. */
export interface CodexStatusData {
  status: 'running' | 'shutting_down';
  version: string;
  uptime: number;
  tasks: CodexTaskCounts;
  nodes: { online: number; total: number };
  timestamp: string;
}

/** `GET /metrics` JSON `data`, pushed as `metrics_update` (memory like "128MB", cpu like "15%", uptime in s). */
export interface CodexMetricsData {
  tasks: CodexTaskCounts;
  performance: { avgExecutionTime: number; successRate: number; throughput: number; throughputUnit: 'tasks/hour' };
  system: { uptime: number; memory: string; cpu: string };
}

export interface ConnectedData {
  subscribed: 'all';
  heartbeatInterval: number;
  metricsInterval: number;
}

export interface ServerToClientEvents {
  connected: ConnectedData;
  status: CodexStatusData;
  pong: { timestamp: string };
  subscribed: { all: boolean; taskIds: string[] };
  metrics_subscribed: { metrics: boolean; intervalMs: number };
  chat_subscribed: { all: boolean; request_ids: string[] };
  metrics_update: CodexMetricsData & { timestamp: string };
  task_created: CodexTaskEventData<ClientEventData['task_created']>;
  task_started: CodexTaskEventData<ClientEventData['task_started']>;
  task_progress: CodexTaskEventData<ClientEventData['task_progress']>;
  task_completed: CodexTaskEventData<ClientEventData['task_completed']>;
  task_failed: CodexTaskEventData<ClientEventData['task_failed']>;
  task_cancelled: CodexTaskEventData<ClientEventData['task_cancelled']>;
  node_online: NodeEventData;
  node_offline: NodeEventData;
  notification: NotificationData;
  alert: AlertData;
  'chat.chunk': ChatChunkData;
  'chat.completed': ChatCompletedData;
  /** A malformed or unknown message; the connection stays open. */
  error: SocketError;
  /** Then the connection closes with 1001. */
  server_shutdown: ServerShutdown;
}

export interface ClientToServerEvents {
  ping: unknown;
  get_status: unknown;
  /** No ids (or an empty list): every task. */
  subscribe_tasks: { taskIds?: string[] } | undefined;
  /** No ids: none. */
  unsubscribe_tasks: { taskIds?: string[] } | undefined;
  subscribe_metrics: unknown;
  unsubscribe_metrics: unknown;
  subscribe_chat: { request_id?: string; all?: boolean };
  unsubscribe_chat: { request_id?: string; all?: boolean };
}

export type WsStreamFrame = {
  [K in keyof ServerToClientEvents]: { type: K; data: ServerToClientEvents[K] };
}[keyof ServerToClientEvents];
