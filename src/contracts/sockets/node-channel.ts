/**
 * The raw WebSocket Apex node channel (seed 001: `/abp-distributed-server/VCP_Key=<key>`,
 * `/distributed-server/…`, deprecated `/vcp-distributed-server/…`): JSON text frames
 * `{type, data, id?}` with the device channel's vocabulary. A frame's `id` pairs a request
 * with its reply (`ack`, `register_success`, `heartbeat_ack`, `error`, `llm_response`).
 *
 * The maps give each frame type its `data`.
 */
import type { DeprecationWarning, ServerShutdown, SocketError } from './error.js';
import type {
  CancelTaskMessage,
  DeviceRegisterPayload,
  HeartbeatAck,
  HeartbeatPayload,
  LlmRequestPayload,
  LlmResponse,
  LlmResponseChunk,
  LogPayload,
  NewTaskMessage,
  NodeRegisterPayload,
  NotificationPayload,
  OkAck,
  RegisterSuccess,
  TaskAssignMessage,
  TaskProgressPayload,
  TaskReportAck,
  TaskResultPayload,
} from './device.js';

export interface Frame<T extends string = string, D = unknown> {
  type: T;
  data?: D;
  id?: string | number;
}

export interface ClientToServerEvents {
  node_register: NodeRegisterPayload;
  device_register: DeviceRegisterPayload;
  heartbeat: HeartbeatPayload | undefined;
  task_progress: TaskProgressPayload;
  task_result: TaskResultPayload;
  log: LogPayload;
  notification: NotificationPayload;
  /** `id "assign:<task_id>:<attempt>"` (the assignment's frame id), or `data {task_id, attempt}`. */
  ack: { task_id?: string; attempt?: number } | undefined;
  ping: unknown;
  /** The request id may be `data.id` or the frame's `id`. */
  llm_request: Omit<LlmRequestPayload, 'id'> & { id?: string | number };
}

export interface ServerToClientEvents {
  register_success: RegisterSuccess;
  heartbeat_ack: HeartbeatAck;
  /** Frame id `assign:<task_id>:<attempt>`: answer `{type: 'ack', id}` to have it running. */
  task_assign: TaskAssignMessage;
  /** To a connection that registered with `device_register`. */
  new_task: NewTaskMessage;
  cancel_task: CancelTaskMessage;
  /** The reply to a report that carried an `id` (reports without one are not answered). */
  ack: TaskReportAck | OkAck;
  pong: { server_time: string };
  llm_response: LlmResponse;
  llm_response_chunk: LlmResponseChunk;
  /** A refused frame (`event` names its type, `frame` when it could not be read); also before a close (REPLACED, DISCONNECTED). */
  error: SocketError;
  warning: DeprecationWarning;
  /** Then the connection closes with 1012. */
  server_shutdown: ServerShutdown;
}

export type NodeChannelFrame = {
  [K in keyof ServerToClientEvents]: Frame<K, ServerToClientEvents[K]>;
}[keyof ServerToClientEvents];
