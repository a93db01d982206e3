import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor, SetMetadata } from '@nestjs/common';
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

/** Whether a route answers its own body (@RawResponse()) instead of the envelope. */
export const isRawResponse = (reflector: Reflector, handler: object, controller: object): boolean =>
  reflector.getAllAndOverride<boolean>(RAW_RESPONSE, [handler as () => void, controller as () => void]) === true;

/** Whether a route answers the flat seed 003 envelope (@FlatEnvelope()). */
export const isFlatEnvelope = (reflector: Reflector, handler: object, controller: object): boolean =>
  reflector.getAllAndOverride<boolean>(FLAT_RESPONSE, [handler as () => void, controller as () => void]) === true;

export function envelope<T>(data: T, requestId: string): Envelope<T> {
  return { success: true, data, error: null, timestamp: new Date().toISOString(), request_id: requestId };
}

const FLAT_RESPONSE = 'taskhub:flat-response';
/**
 * Seed 003 answers (agent services, connections, stats, service health and logs) carry their
 * fields at the top level. Such routes answer the envelope with the seed's fields beside it:
 * `{success, data, error, timestamp, request_id, ...seedFields}`, so clients of either shape
 * work. A seed field named `data` (time series points) is the envelope's `data`.
 */
export const FlatEnvelope = (): MethodDecorator & ClassDecorator => SetMetadata(FLAT_RESPONSE, true);

function flatEnvelope(body: unknown, requestId: string): Record<string, unknown> {
  const fields =
    typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const data = 'data' in fields ? fields.data : (body ?? null);
  return { success: true, ...fields, data, error: null, timestamp: new Date().toISOString(), request_id: requestId };
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
    const flat = this.reflector.getAllAndOverride<boolean>(FLAT_RESPONSE, [context.getHandler(), context.getClass()]);
    if (flat) return next.handle().pipe(map((body: unknown) => flatEnvelope(body, req.requestId)));
    return next.handle().pipe(map((data: unknown) => envelope(data ?? null, req.requestId)));
  }
}
