import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { toAppError } from '../../common/exception.filter.js';

/** Seed 004 error shape: `{success: false, message, error_code}` (plus request_id). */
@Catch()
export class Seed004ExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<{ requestId: string }>();
    const error = toAppError(exception);
    res.status(error.status).json({
      success: false,
      message: error.message,
      error_code: error.code,
      ...(error.details ? { details: error.details } : {}),
      request_id: req.requestId,
    });
  }
}
