import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { DatabaseStatus } from './database-status.js';

/**
 * Runs the route again while it fails because the database is unreachable (up to
 * REPORT_RETRY_MS), answering only after the commit: a worker's complete sent during a
 * PostgreSQL restart is applied, not refused. `next.handle()` is cold, so each subscription
 * runs the handler anew. For reports that are safe to repeat (guarded by holder and attempt).
 */
@Injectable()
export class RetryOnOutageInterceptor implements NestInterceptor {
  constructor(private readonly database: DatabaseStatus) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return from(this.database.retry(() => lastValueFrom(next.handle(), { defaultValue: undefined })));
  }
}

export const RetryOnOutage = (): MethodDecorator & ClassDecorator => UseInterceptors(RetryOnOutageInterceptor);
