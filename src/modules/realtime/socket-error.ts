import type { SocketError, SocketErrorDetails } from '../../contracts/sockets/error.js';
import type { AppError } from '../../common/errors.js';

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
