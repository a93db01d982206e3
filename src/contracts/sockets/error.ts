/**
 * The one error object every socket channel sends, whatever envelope carries it: Socket.IO
 * `error` events and refused acks (`{success: false, error}`), `{type: 'error', data}` frames
 * on `/ws`, the Apex node channel and the log channel, and the JSON body of a refused raw
 * upgrade. It is the HTTP envelope's `error` (`code`, `message`, `details`) plus `error_code`,
 * the name seed 004's WebSocket error event uses for the code.
 */
export interface SocketError {
  /** An ErrorCode (`VALIDATION_ERROR`, `NOT_REGISTERED`, `STALE_ATTEMPT`, …) or a close reason (`REPLACED`, `DISCONNECTED`). */
  code: string;
  /** The same value as `code` (seed 004 devices read `error_code`). */
  error_code: string;
  message: string;
  /** As on HTTP: `field` names the input at fault; other keys depend on the code. Absent when there is nothing to add. */
  details?: SocketErrorDetails;
  /** The inbound event or frame type it answers (`connect` for the handshake); absent on notices the hub starts. */
  event?: string;
}

export interface SocketErrorDetails {
  field?: string;
  message?: string;
  [key: string]: unknown;
}

/** The ack of a message the hub refused (Socket.IO channels, when the client asked for an ack). */
export interface RefusedAck {
  success: false;
  error: SocketError;
}

/** The ack callback of a client message: the answer, or the refusal. */
export type Answer<T> = (answer: T | RefusedAck) => void;

/** The hub is stopping: the client may (and socket.io-client will) reconnect. Sent on every channel but the log channel. */
export interface ServerShutdown {
  reason: string;
  reconnect: true;
  timestamp: string;
}

/** A deprecated path was used (raw Apex channels); the connection works. */
export interface DeprecationWarning {
  code: 'DEPRECATED_PATH';
  message: string;
}
