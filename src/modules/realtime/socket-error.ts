import type { Duplex } from 'node:stream';
import type { SocketError, SocketErrorDetails } from '../../contracts/sockets/error.js';
import type { AppError } from '../../common/errors.js';

/** A refused upgrade's peer gets this long to read the answer before its socket is destroyed. */
const REFUSAL_LINGER_MS = 2000;

/**
 * The one error object of every socket channel (see contracts/sockets/error.ts), from an
 * AppError. `event` names the inbound message it answers; `code` may be overridden by a
 * close reason (REPLACED, DISCONNECTED).
 */
export function socketError(error: Pick<AppError, 'code' | 'message' | 'details'>, event?: string): SocketError {
  return closeError(error.code, error.message, event, error.details as SocketErrorDetails | undefined);
}

/** The same object from its parts (close reasons have no AppError). */
export function closeError(code: string, message: string, event?: string, details?: SocketErrorDetails): SocketError {
  return {
    code,
    error_code: code,
    message,
    ...(details ? { details } : {}),
    ...(event !== undefined ? { event } : {}),
  };
}

/**
 * Refuses a raw WebSocket upgrade with an HTTP status and the error object as its JSON body
 * (status text = the code), then closes: the client learns why without a socket. A peer that
 * neither reads nor closes is destroyed after a short linger; a socket already gone is left.
 */
export function refuseUpgrade(socket: Duplex, status: number, error: SocketError): void {
  if (socket.destroyed || !socket.writable) return;
  const body = JSON.stringify(error);
  socket.end(
    `HTTP/1.1 ${status} ${error.code}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
