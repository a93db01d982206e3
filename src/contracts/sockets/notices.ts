/** What `/events` and `/ws` clients hear besides tasks: nodes, notifications, alerts, streamed chats. */
import type { ChatCompletion, ChatCompletionChunk, OpenAiError } from './tasks.js';

export interface NodeEventData {
  nodeId: string;
  node_id: string;
  /** node_offline only: why (disconnected, heartbeat missed, removed, …). */
  reason?: string;
  timestamp: string;
}

/** An alert or a notification and the ids it is about (seed 001 `{type, data: {severity, message, …}}`). */
export interface NoticeData {
  message: string;
  /** Who raised it: `task`, `node`, `plugin`, `service`, `hub`. */
  source: string;
  task_id?: string;
  node_id?: string;
  service_id?: string;
  plugin?: string;
  timestamp: string;
  [extra: string]: unknown;
}

export interface NotificationData extends NoticeData {
  severity: 'info' | 'warning';
}

export interface AlertData extends NoticeData {
  severity: 'warning' | 'critical';
}

/** A streamed chunk of an LLM gateway request the client watches (`subscribe_chat`). */
export interface ChatChunkData {
  request_id: string;
  chunk: ChatCompletionChunk;
}

/** The request ended: the whole completion (aggregated when streamed), or its error in OpenAI's shape. */
export interface ChatCompletedData {
  request_id: string;
  completion: ChatCompletion | null;
  error: OpenAiError | null;
}
