/**
 * The raw WebSocket Apex log channel (`/ABPlog/VCP_Key=<key>`, `/log/…`, deprecated
 * `/VCPlog/…`), admin keys only, listen-only: `{type, data}` frames from the hub. Query
 * filters: `level` (that level and worse), `node_id`, `task_id`, `source`.
 */
import type { DeprecationWarning, SocketError } from './error.js';

export interface LogLine {
  time: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  /** `node`, `task`, `service`, `hub`, `plugin`. */
  source: string;
  message: string;
  node_id?: string;
  task_id?: string;
  service_id?: string;
  data?: unknown;
}

export interface ServerToClientEvents {
  /** The last 100 matching lines on connect, then live ones. */
  log: LogLine;
  warning: DeprecationWarning;
  /** Anything a client sends is answered with this (VALIDATION_ERROR); the connection stays. */
  error: SocketError;
}

/** Listen-only: no client frame is understood. */
export type ClientToServerEvents = Record<string, never>;
