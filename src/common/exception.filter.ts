import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, codeOfStatus, ErrorCode, type ErrorDetails } from './errors.js';
import { logServerError } from './server-error-log.js';
import { LlmError } from '../modules/llm/llm-error.js';
import { llmErrorOf, OPENAI_PATHS, sendLlmError } from '../modules/llm/openai-errors.js';

/**
 * Seed 003's routes (agent services, connections, routing rules, stats, service health and
 * logs): its error table names a bad request `INVALID_REQUEST`, so there VALIDATION_ERROR is
 * answered under that code (details unchanged). The other /api/v1 routes keep VALIDATION_ERROR.
 */
export const SEED003_PATHS = /^\/api\/v1\/(services|connections|routing\/rules|stats|health\/services|logs)(\/|$)/;

/** What body-parser (raw-body, http-errors) attaches to the errors it raises: `type` names the failure. */
interface BodyParserError {
  type?: unknown;
  status?: unknown;
  expose?: unknown;
  message?: unknown;
}

/** Body-parser failures and the header or body they are about. */
const BODY_FIELD: Readonly<Record<string, string>> = {
  'entity.too.large': 'body',
  'entity.parse.failed': 'body',
  'entity.verify.failed': 'body',
  'request.size.invalid': 'body',
  'charset.unsupported': 'Content-Type',
  'encoding.unsupported': 'Content-Encoding',
};

const INTERNAL = (): AppError => new AppError(ErrorCode.INTERNAL_ERROR, 'Internal server error');

/**
 * An error status as the error envelope: the status stays, its code comes from the one table
 * (HTTP_STATUS_CODE). A status outside it is no status we answer with: 500, never a guessed 400.
 */
function fromStatus(status: number, message: string, details?: ErrorDetails): AppError {
  const code = codeOfStatus(status);
  if (code === undefined) return INTERNAL();
  if (status === 413) return new AppError(code, 'Request body is too large', { field: 'body' });
  if (status === 400 && /JSON/.test(message)) return new AppError(code, message, details ?? { field: 'body' });
  return new AppError(code, message, details);
}

/** Turns any thrown thing into the error envelope. Unknown errors are 500 with the request id, no stack. */
export function toAppError(exception: unknown): AppError {
  if (exception instanceof AppError) return exception;
  if (exception instanceof HttpException) {
    const response = exception.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? String((response as { message: unknown }).message)
        : exception.message;
    return fromStatus(exception.getStatus(), message);
  }
  const bodyError = exception as BodyParserError | null | undefined;
  if (typeof bodyError?.status === 'number' && (typeof bodyError.type === 'string' || bodyError.expose === true)) {
    const field = typeof bodyError.type === 'string' ? BODY_FIELD[bodyError.type] : undefined;
    if (bodyError.type === 'entity.parse.failed')
      return new AppError(ErrorCode.VALIDATION_ERROR, 'Request body is not valid JSON', { field: 'body' });
    return fromStatus(
      bodyError.status,
      typeof bodyError.message === 'string' ? bodyError.message : 'Bad request',
      field ? { field } : undefined,
    );
  }
  return INTERNAL();
}

/** Lost races of the state machine, answered as 409 CONFLICT with `details.reason` under /api/v1. */
const CONCURRENCY_CODES: ReadonlySet<ErrorCode> = new Set([ErrorCode.STALE_ATTEMPT]);
const asConflict = (e: AppError): AppError =>
  new AppError(ErrorCode.CONFLICT, e.message, { ...(e.details ?? {}), reason: e.code });

@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const error = exception instanceof LlmError ? null : toAppError(exception);
    if (error === null) {
      if (!res.headersSent) sendLlmError(res, exception as LlmError);
      return;
    }
    logServerError(req, exception, error);
    if (res.headersSent) return;
    // The OpenAI-compatible routes answer every error (auth, limits, bad JSON) in OpenAI's shape.
    if (OPENAI_PATHS.test(req.path))
      return sendLlmError(res, exception instanceof LlmError ? exception : llmErrorOf(error));
    // Seed 002: under /api/v1 every concurrency conflict is CONFLICT; the finer reason goes in details.
    const conflict = CONCURRENCY_CODES.has(error.code) && req.path.startsWith('/api/v1/') ? asConflict(error) : error;
    // Seed 003's routes name a bad request INVALID_REQUEST.
    const code =
      conflict.code === ErrorCode.VALIDATION_ERROR && SEED003_PATHS.test(req.path)
        ? ErrorCode.INVALID_REQUEST
        : conflict.code;
    res.status(conflict.status).json({
      success: false,
      data: null,
      error: { code, message: conflict.message, ...(conflict.details ? { details: conflict.details } : {}) },
      timestamp: new Date().toISOString(),
      request_id: req.requestId,
    });
  }
}
