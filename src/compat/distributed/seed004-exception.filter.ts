import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { toAppError } from '../../common/exception.filter.js';
import { logServerError } from '../../common/server-error-log.js';

/** Seed 004 error shape: `{success: false, message, error_code}` (plus request_id). */
@Catch()
export class Seed004ExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const error = toAppError(exception);
    logServerError(req, exception, error);
    if (res.headersSent) return;
    res.status(error.status).json({
      success: false,
      message: error.message,
      error_code: error.code,
      ...(error.details ? { details: error.details } : {}),
      request_id: req.requestId,
    });
  }
}
