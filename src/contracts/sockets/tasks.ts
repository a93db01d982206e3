/** Task vocabulary shared by the socket contracts (no imports: the SDK reads these without the hub). */

export type TaskStatus = 'pending' | 'dispatched' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out';
export type PriorityName = 'low' | 'medium' | 'high' | 'urgent';

export interface ConversationMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
  at: string;
}

/** A task reference a device says it is still on (or has a result for). No attempt = any attempt. */
export interface RunningTaskRef {
  task_id: string;
  attempt?: number;
}

/** A task the node still holds, as `register_success.held_tasks` lists it. */
export interface HeldTaskRef {
  task_id: string;
  attempt: number;
  status: string;
}

/** OpenAI-compatible chat payloads as the LLM gateway passes them on (its upstreams define the rest). */
export interface ChatCompletionChunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices?: unknown[];
  usage?: unknown;
  [key: string]: unknown;
}

export interface ChatCompletion {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices?: unknown[];
  usage?: unknown;
  [key: string]: unknown;
}

/** OpenAI's error object (the LLM gateway answers in OpenAI's shape, on HTTP and on sockets). */
export interface OpenAiError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}
