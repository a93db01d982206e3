import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ErrorCode } from '../../common/errors.js';
import { toAppError } from '../../common/exception.filter.js';
import { logServerError } from '../../common/server-error-log.js';

/**
 * Seed 000 error shape: `{success: false, error: {code, message, details}, timestamp, requestId}`.
 * A missing task (or an id that cannot be one) is `TASK_NOT_FOUND` with `details.taskId`; everything else
 * keeps the hub's code and status. `details` always holds the `timestamp`, as the seed shows.
 */
@Catch()
export class CodexExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const error = toAppError(exception);
    logServerError(req, exception, error);
    if (res.headersSent) return;
    const taskId = (req.params as Record<string, string | undefined> | undefined)?.id;
    const notFound = error.code === ErrorCode.NOT_FOUND && taskId !== undefined;
    const timestamp = new Date().toISOString();
    res.status(error.status).json({
      success: false,
      error: {
        code: notFound ? 'TASK_NOT_FOUND' : error.code,
        message: notFound ? `Task not found: ${taskId}` : error.message,
        // The seed's error details carry the time too (`details.timestamp`).
        details: { ...(notFound ? { taskId } : error.details), timestamp },
      },
      timestamp,
      requestId: req.requestId,
    });
  }
}
