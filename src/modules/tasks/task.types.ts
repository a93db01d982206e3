export const TASK_STATES = [
  'pending',
  'dispatched',
  'running',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
export type PriorityName = (typeof PRIORITIES)[number];

/** Stored as smallint so "highest first" is a plain numeric sort. */
export const PRIORITY_VALUE: Record<PriorityName, number> = { low: 0, medium: 1, high: 2, urgent: 3 };
export const priorityName = (value: number): PriorityName => PRIORITIES[value] ?? 'medium';

export interface ChatMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
  at: string;
}

/** A row of `tasks` as the pg driver returns it. */
export interface TaskRow {
  id: string;
  /** Whose task it is (docs/tenants.md); streams deliver it only to that tenant. */
  tenant_id: string;
  type: string;
  prompt: string | null;
  data: unknown;
  priority: number;
  tags: string[];
  /** A pushed task goes only to a node that has all of these tags. */
  required_tags: string[];
  work_directory: string | null;
  environment: string | null;
  files: unknown;
  status: TaskState;
  target_node_id: string | null;
  node_id: string | null;
  worker_id: string | null;
  attempt: number;
  retry_count: number;
  max_retries: number;
  timeout_seconds: number;
  run_at: Date;
  lease_expires_at: Date | null;
  /** Times the current attempt was sent to its node (1 at dispatch; 2 after an ack timeout's re-send). */
  delivery_count: number;
  delivered_at: Date | null;
  progress: number;
  progress_message: string | null;
  result: unknown;
  error: unknown;
  messages: ChatMessage[];
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  dispatched_at: Date | null;
  started_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  last_retry_at: Date | null;
  cancel_reason: string | null;
  /** Created to await this plugin's callback: never dispatched; a retry re-arms the wait. */
  awaits_callback: string | null;
  /** W3C context of the task's intake span (src/common/tracing/task-spans.ts); its trace is the submitter's. */
  traceparent: string | null;
  tracestate: string | null;
  /** Its concurrency key (docs/flow-control.md): the key's limits bound how many start. */
  concurrency_key: string | null;
}

export const EVENT_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type EventLevel = (typeof EVENT_LEVELS)[number];

export interface TaskEventRow {
  id: string;
  task_id: string;
  at: Date;
  type: string;
  level: EventLevel;
  message: string;
  attempt: number;
  data: unknown;
}

/** What a new task is made of once defaults are applied. */
export interface NewTask {
  id: string;
  type: string;
  prompt: string | null;
  data: unknown;
  priority: number;
  tags: string[];
  required_tags: string[];
  work_directory: string | null;
  environment: string | null;
  files: unknown;
  target_node_id: string | null;
  max_retries: number;
  timeout_seconds: number;
  run_at: string | null;
  metadata: Record<string, unknown>;
  idempotency_key: string | null;
  traceparent: string;
  tracestate: string | null;
  concurrency_key: string | null;
}

/** What a plugin's callback reports about the task it holds. */
export type PluginOutcome =
  { status: 'success'; result: unknown } | { status: 'failed'; error: { message: string; details?: unknown } };
