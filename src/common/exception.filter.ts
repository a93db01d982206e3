import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from './errors.js';
import { LlmError } from '../modules/llm/llm-error.js';
import { llmErrorOf, OPENAI_PATHS, sendLlmError } from '../modules/llm/openai-errors.js';

const STATUS_CODE: Partial<Record<number, ErrorCode>> = {
  400: ErrorCode.VALIDATION_ERROR,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.SERVICE_UNAVAILABLE,
};

/**
 * Seed 003's routes (agent services, connections, routing rules, stats, service health and
 * logs): its error table names a bad request `INVALID_REQUEST`, so there VALIDATION_ERROR is
 * answered under that code (details unchanged). The other /api/v1 routes keep VALIDATION_ERROR.
 */
export const SEED003_PATHS = /^\/api\/v1\/(services|connections|routing\/rules|stats|health\/services|logs)(\/|$)/;

interface BodyParserError {
  type?: string;
  status?: number;
  message?: string;
}

/** Turns any thrown thing into the error envelope. Unknown errors are 500 with the request id, no stack. */
export function toAppError(exception: unknown): AppError {
  if (exception instanceof AppError) return exception;
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const code = STATUS_CODE[status] ?? (status >= 500 ? ErrorCode.INTERNAL_ERROR : ErrorCode.VALIDATION_ERROR);
    const response = exception.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? String((response as { message: unknown }).message)
        : exception.message;
    // Body-parser failures reach us as HttpExceptions too: name the body as the offending field.
    const bodyProblem = status === 413 || (status === 400 && /JSON/.test(message));
    return new AppError(
      code,
      status === 413 ? 'Request body is too large' : message,
      bodyProblem ? { field: 'body' } : undefined,
    );
  }
  const bodyError = exception as BodyParserError;
  if (bodyError?.type === 'entity.too.large') {
    return new AppError(ErrorCode.PAYLOAD_TOO_LARGE, 'Request body is too large', { field: 'body' });
  }
  if (bodyError?.type === 'entity.parse.failed') {
    return new AppError(ErrorCode.VALIDATION_ERROR, 'Request body is not valid JSON', { field: 'body' });
  }
  if (typeof bodyError?.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
    return new AppError(
      STATUS_CODE[bodyError.status] ?? ErrorCode.VALIDATION_ERROR,
      bodyError.message ?? 'Bad request',
    );
  }
  return new AppError(ErrorCode.INTERNAL_ERROR, 'Internal server error');
}

/** Lost races of the state machine, answered as 409 CONFLICT with `details.reason` under /api/v1. */
const CONCURRENCY_CODES: ReadonlySet<ErrorCode> = new Set([ErrorCode.STALE_ATTEMPT]);
const asConflict = (e: AppError): AppError =>
  new AppError(ErrorCode.CONFLICT, e.message, { ...(e.details ?? {}), reason: e.code });

@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

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
    if (error.status >= HttpStatus.INTERNAL_SERVER_ERROR) {
      this.logger.error(
        { err: exception, request_id: req.requestId },
        `${req.method} ${req.originalUrl} failed: ${(exception as Error)?.message ?? String(exception)}`,
      );
    }
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
