import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { map, type Observable } from 'rxjs';

export interface Envelope<T> {
  success: boolean;
  data: T | null;
  error: { code: string; message: string; details?: unknown } | null;
  timestamp: string;
  request_id: string;
}

const RAW_RESPONSE = 'taskhub:raw-response';
/** The handler's return value is the body as is (health checks, compatibility surfaces). */
export const RawResponse = (): MethodDecorator & ClassDecorator => SetMetadata(RAW_RESPONSE, true);

export function envelope<T>(data: T, requestId: string): Envelope<T> {
  return { success: true, data, error: null, timestamp: new Date().toISOString(), request_id: requestId };
}

/** Wraps every canonical API answer in `{success, data, error, timestamp, request_id}`. */
@Injectable()
export class EnvelopeInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const raw = this.reflector.getAllAndOverride<boolean>(RAW_RESPONSE, [context.getHandler(), context.getClass()]);
    if (raw) return next.handle();
    const req = context.switchToHttp().getRequest<Request>();
    return next.handle().pipe(map((data: unknown) => envelope(data ?? null, req.requestId)));
  }
}
