/**
 * The Socket.IO namespace `/events` for clients (role `client` or `admin`): task lifecycle,
 * node presence, notices, metrics and streamed LLM chats.
 */
import type { Answer, ServerShutdown, SocketError } from './error.js';
import type { AlertData, ChatChunkData, ChatCompletedData, NodeEventData, NotificationData } from './notices.js';
import type { TaskStatus } from './tasks.js';

/** Every task push: both spellings of the ids (snake_case canonical, camelCase for Codex clients). */
export interface TaskEventData {
  taskId: string;
  task_id: string;
  status: TaskStatus;
  type: string;
  progress: number;
  /** The last progress message. */
  message: string | null;
  attempt: number;
  nodeId: string | null;
  workerId: string | null;
  timestamp: string;
}

export interface TaskCreatedData extends TaskEventData {
  prompt: string | null;
  /** 0 low … 3 urgent. */
  priority: number;
}
export interface TaskCompletedData extends TaskEventData {
  result: unknown;
}
export interface TaskFailedData extends TaskEventData {
  error: unknown;
  /** The retry policy put it back in the queue. */
  retrying: boolean;
}
export interface TaskCancelledData extends TaskEventData {
  reason: string | null;
}

/** The pushes `/events` and `/ws` share (the `/ws` stream rewrites task data in Codex words). */
export interface ClientEventData {
  task_created: TaskCreatedData;
  task_started: TaskEventData;
  task_progress: TaskEventData;
  task_completed: TaskCompletedData;
  task_failed: TaskFailedData;
  task_cancelled: TaskCancelledData;
  node_online: NodeEventData;
  node_offline: NodeEventData;
  notification: NotificationData;
  alert: AlertData;
}
export type ClientEventType = keyof ClientEventData;

/** `get_status` and `metrics_update`: task counts by hub state and nodes online. */
export interface HubStatus {
  version: string;
  /** Seconds. */
  uptime: number;
  tasks: Record<TaskStatus, number> & Record<string, number>;
  nodes: { online: number; total: number };
  timestamp: string;
}

/** `{taskIds: [...]}` joins those tasks; none (or `all: true`) joins every task. */
export interface TaskSubscription {
  taskIds?: string[];
  all?: boolean;
}
/** `{request_id}`: a gateway request made with this key (admins: any key); `{all: true}`: every one (admins). */
export interface ChatSubscription {
  request_id?: string;
  all?: boolean;
}

export interface SubscribedAck {
  success: true;
  /** The rooms this socket is in (`tasks:all`, `task:<id>`, …). */
  subscribed: string[];
}
export interface MetricsSubscribedAck {
  success: true;
  interval_ms?: number;
}
export interface ChatSubscribedAck {
  success: true;
  room: string;
}
export type StatusAck = { success: true } & HubStatus;

export interface ClientToServerEvents {
  subscribe_tasks: (m?: TaskSubscription, ack?: Answer<SubscribedAck>) => void;
  unsubscribe_tasks: (m?: TaskSubscription, ack?: Answer<SubscribedAck>) => void;
  subscribe_metrics: (m?: unknown, ack?: Answer<MetricsSubscribedAck>) => void;
  unsubscribe_metrics: (m?: unknown, ack?: Answer<MetricsSubscribedAck>) => void;
  subscribe_chat: (m: ChatSubscription, ack?: Answer<ChatSubscribedAck>) => void;
  unsubscribe_chat: (m: ChatSubscription, ack?: Answer<ChatSubscribedAck>) => void;
  get_status: (m?: unknown, ack?: Answer<StatusAck>) => void;
}

type Pushes = { [K in ClientEventType]: (data: ClientEventData[K]) => void };

export interface ServerToClientEvents extends Pushes {
  status: (s: HubStatus) => void;
  metrics_update: (s: HubStatus) => void;
  'chat.chunk': (m: ChatChunkData) => void;
  'chat.completed': (m: ChatCompletedData) => void;
  /** A refused subscription (`details.field`), or a refused handshake before the disconnect. */
  error: (e: SocketError) => void;
  server_shutdown: (m: ServerShutdown) => void;
}
