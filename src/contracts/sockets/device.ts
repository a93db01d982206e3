/**
 * The device channel: Socket.IO on the default namespace `/` (seed 004 devices, Apex nodes
 * over Socket.IO). The raw Apex node channel carries the same payloads in `{type, data, id?}`
 * frames (see node-channel.ts). Inbound payloads are validated by the hub (class-validator,
 * `src/modules/realtime/device-messages.ts`); these types describe what passes.
 */
import type { Answer, ServerShutdown, SocketError } from './error.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ConversationMessage,
  HeldTaskRef,
  OpenAiError,
  PriorityName,
  RunningTaskRef,
  TaskStatus,
} from './tasks.js';

// ---- client → hub payloads ----

/** What any registration may add for delivery: it acks assignments; the held tasks it is still on. */
export interface DeliveryOptions {
  acks?: boolean;
  running_tasks?: RunningTaskRef[];
  /** Serve every tenant's tasks (a global key only; docs/flow-control.md, "Fairness"). */
  shared?: boolean;
}

/** Seed 004 `device_register`, plus capacity, tags and task types. */
export interface DeviceRegisterPayload extends DeliveryOptions {
  device_id: string;
  device_name?: string;
  device_info?: Record<string, unknown>;
  capacity?: number;
  tags?: string[];
  /** Task types it takes (e.g. DELIST); none = any. */
  capabilities?: string[];
  version?: string;
  /** Tools it runs for chats (docs/tools.md). */
  tools?: ToolDeclaration[];
}

/** A tool a node or device runs: an OpenAI function definition, bare or wrapped. */
export type ToolDeclaration =
  | { name: string; description?: string; parameters?: Record<string, unknown> }
  | { type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } };

/** Apex `node_register`: the id as `node_id` or `nodeId`. */
export interface NodeRegisterPayload extends DeliveryOptions {
  node_id?: string;
  nodeId?: string;
  name?: string;
  type?: 'worker' | 'companion' | 'custom';
  capabilities?: unknown[];
  persona?: unknown;
  version?: string;
  capacity?: number;
  tags?: string[];
  info?: Record<string, unknown>;
  /** Tools it runs for chats (docs/tools.md). */
  tools?: ToolDeclaration[];
}

export interface HeartbeatPayload {
  device_id?: string;
  node_id?: string;
  timestamp?: string;
  status?: string;
  resources?: Record<string, unknown>;
  stats?: Record<string, unknown>;
}

export interface TaskProgressPayload {
  task_id: string;
  /** 0 to 100. */
  progress: number;
  message?: string;
  attempt?: number;
}

export interface TaskResultPayload {
  task_id: string;
  result?: unknown;
  success?: boolean;
  /** `pending`: handed to a plugin (`plugin`, or `result.plugin`), which calls back. */
  status?: 'success' | 'completed' | 'ok' | 'failed' | 'error' | 'pending';
  plugin?: string;
  error?: string | Record<string, unknown>;
  retryable?: boolean;
  attempt?: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogPayload {
  task_id?: string;
  level?: LogLevel;
  message: string;
  attempt?: number;
  data?: unknown;
}

/** Seed 001 `notification`: relayed to `/ws` and `/events` clients. */
export interface NotificationPayload {
  message: string;
  severity?: 'info' | 'warning';
  task_id?: string;
  data?: unknown;
}

/** Seed 001 `llm_request`: an OpenAI chat completion body plus the id the answer carries. */
export interface LlmRequestPayload {
  id: string | number;
  model?: string;
  messages: unknown[];
  stream?: boolean;
  /** W3C context the gateway's upstream span continues (e.g. the `traceparent` of the task being run); not sent to the provider. */
  traceparent?: string;
  [key: string]: unknown;
}

// ---- hub → client payloads ----

interface RegisterSuccessBase {
  message: string;
  /** `2025-09-17T14:30:00` (seed 004, local time, no zone) after `device_register`; ISO 8601 UTC after `node_register`. */
  server_time: string;
  /** How often the hub would like a heartbeat (ms). */
  heartbeat_interval: number;
  capacity: number;
  /** Tasks it still holds from an earlier connection (those it did not report running are sent again). */
  held_tasks: HeldTaskRef[];
}

/** `device_id` after `device_register`, `node_id` after `node_register`. */
export type RegisterSuccess = RegisterSuccessBase & ({ device_id: string } | { node_id: string });

export interface HeartbeatAck {
  /** `2025-09-17T14:30:00` (seed 004, local time, no zone) after `device_register`; ISO 8601 UTC after `node_register`. */
  server_time: string;
}

interface AssignmentBase {
  task_id: string;
  task_type: string;
  prompt: string | null;
  priority: PriorityName;
  tags: string[];
  /** The fencing token: reports for this hand-out carry it. */
  attempt: number;
  /** `2025-09-17T14:30:00` (seed 004, local time, no zone) in `new_task`; ISO 8601 UTC in `task_assign`. */
  created_at: string;
  /** Seconds. */
  timeout: number;
  metadata: Record<string, unknown>;
  /** The conversation so far (reply re-queues a task with the new message appended). */
  messages: ConversationMessage[];
  /**
   * W3C trace context of this attempt's run (absent for tasks from before tracing): a device
   * that traces continues it; others ignore it. `tracestate` only when the submitter sent one.
   */
  traceparent?: string;
  tracestate?: string;
}

/** Seed 004 `new_task`. */
export interface NewTaskMessage extends AssignmentBase {
  type: 'new_task';
  data: unknown;
}

/** Apex `task_assign`. */
export interface TaskAssignMessage extends AssignmentBase {
  type: 'task_assign';
  node_id: string | null;
  action: string;
  payload: unknown;
  timeout_seconds: number;
  /** `ws` (answer on this channel) or the plugin callback path that will deliver the result. */
  callback: string;
}

export type AssignmentMessage = NewTaskMessage | TaskAssignMessage;

/** What a device answers to an assignment's ack (any answer means "running"). */
export interface AssignmentAck {
  received?: boolean;
  task_id?: string;
  attempt?: number;
  [key: string]: unknown;
}

export interface CancelTaskMessage {
  type: 'cancel_task';
  task_id: string;
  /** The attempt to stop; null = whatever attempt it runs. */
  attempt: number | null;
  reason: string | null;
}

export interface LlmResponseChunk {
  id: string | number;
  request_id: string;
  chunk: ChatCompletionChunk;
}

/** The completion (its own id under `completion_id`), or `error` in OpenAI's shape. */
export type LlmResponse =
  | (Omit<ChatCompletion, 'id'> & { id: string | number; request_id: string; completion_id?: string })
  | { id: string | number | null; request_id: string; error: OpenAiError };

// ---- acks of client messages (when the client passes a callback) ----

export type RegisterAck = { success: true } & RegisterSuccess;
export interface TaskReportAck {
  success: true;
  task_id: string;
  status: TaskStatus;
  progress?: number;
  /** Set when the task now awaits this plugin's callback. */
  plugin?: string;
}
export interface OkAck {
  success: true;
}

export interface ClientToServerEvents {
  device_register: (m: DeviceRegisterPayload, ack?: Answer<RegisterAck>) => void;
  node_register: (m: NodeRegisterPayload, ack?: Answer<RegisterAck>) => void;
  heartbeat: (m?: HeartbeatPayload, ack?: Answer<HeartbeatAck>) => void;
  task_progress: (m: TaskProgressPayload, ack?: Answer<TaskReportAck>) => void;
  task_result: (m: TaskResultPayload, ack?: Answer<TaskReportAck>) => void;
  log: (m: LogPayload, ack?: Answer<OkAck>) => void;
  notification: (m: NotificationPayload, ack?: Answer<OkAck>) => void;
  /** Answered with `llm_response` (and `llm_response_chunk` while streaming); the ack gets the `llm_response` too. */
  llm_request: (m: LlmRequestPayload, ack?: (answer: LlmResponse) => void) => void;
}

export interface ServerToClientEvents {
  register_success: (m: RegisterSuccess) => void;
  heartbeat_ack: (m: HeartbeatAck) => void;
  /** Ack it (any answer) to have the task running at once; registering with `acks: true` says it will. */
  new_task: (m: NewTaskMessage, ack: (answer: AssignmentAck) => void) => void;
  task_assign: (m: TaskAssignMessage, ack: (answer: AssignmentAck) => void) => void;
  cancel_task: (m: CancelTaskMessage) => void;
  llm_response: (m: LlmResponse) => void;
  llm_response_chunk: (m: LlmResponseChunk) => void;
  /** A refused message (`event` names it), a refused handshake (`connect`), or a close (`REPLACED`, `DISCONNECTED`). */
  error: (e: SocketError) => void;
  server_shutdown: (m: ServerShutdown) => void;
}

/** Inbound events handled in order per connection by the device protocol (`llm_request` runs beside them). */
export const DEVICE_INBOUND_EVENTS = [
  'device_register',
  'node_register',
  'heartbeat',
  'task_progress',
  'task_result',
  'log',
  'notification',
] as const satisfies readonly (keyof ClientToServerEvents)[];
