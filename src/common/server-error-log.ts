import { HttpStatus, Logger } from '@nestjs/common';
import type { Request } from 'express';
import type { AppError } from './errors.js';

const logger = new Logger('HTTP');

/**
 * The one place a 5xx answer is logged, by every exception filter (the envelope's and each
 * compatibility surface's): the client gets the request id and no detail, so the log line must
 * carry both the request id and the error with its stack.
 */
export function logServerError(req: Request, exception: unknown, answered: AppError): void {
  if (answered.status < HttpStatus.INTERNAL_SERVER_ERROR) return;
  logger.error(
    { err: exception, request_id: req.requestId },
    `${req.method} ${req.originalUrl} failed: ${(exception as Error)?.message ?? String(exception)}`,
  );
}
