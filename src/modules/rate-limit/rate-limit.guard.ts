import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  SkipThrottle,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
} from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import { isTenantBucket, KEY_THROTTLER, TENANT_THROTTLER, UNLIMITED } from './rate-limit.options.js';
import { RateLimitStore } from './rate-limit.store.js';

const ORDER = [KEY_THROTTLER, TENANT_THROTTLER];

/** Health, metrics and docs are not rate limited: neither the caller's window nor its tenant's. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator =>
  SkipThrottle({ [KEY_THROTTLER]: true, [TENANT_THROTTLER]: true });

/**
 * @nestjs/throttler's guard over the throttlers of RateLimitOptions, answering as taskhub does:
 * past a limit, 429 RATE_LIMITED in the error envelope with Retry-After (and the
 * X-RateLimit-Limit / -Remaining every answer of the caller's window carries).
 * RATE_LIMIT_SKIP_SUCCESSFUL / _FAILED take a request's hits back once it is answered below /
 * from 400 (seed 000 `skip…Requests`); a refused request keeps its hits.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /** Per request: the buckets it was counted in, to take back by the skip settings. */
  private readonly counted = new WeakMap<Request, string[]>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() private readonly store: RateLimitStore,
    reflector: Reflector,
    private readonly config: AppConfig,
  ) {
    super(options, store, reflector);
  }

  override async onModuleInit(): Promise<void> {
    await super.onModuleInit();
    // Throttler orders its throttlers by ttl; the caller's window goes first, so a request its
    // own limit refuses spends nothing of its tenant's budget.
    this.throttlers.sort((a, b) => ORDER.indexOf(a.name ?? '') - ORDER.indexOf(b.name ?? ''));
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const passed = await super.canActivate(context);
    if (passed && context.getType() === 'http') this.takeBackBySkipSettings(context);
    return passed;
  }

  /** Once answered, takes the request's hits back if the skip settings say its answer does not count. */
  private takeBackBySkipSettings(context: ExecutionContext): void {
    const { RATE_LIMIT_SKIP_SUCCESSFUL: skipOk, RATE_LIMIT_SKIP_FAILED: skipFailed } = this.config;
    const buckets = this.counted.get(context.switchToHttp().getRequest<Request>());
    if (!buckets || !(skipOk || skipFailed)) return;
    const res = context.switchToHttp().getResponse<Response>();
    res.once('finish', () => {
      if (res.statusCode < 400 ? skipOk : skipFailed)
        for (const b of buckets) this.store.undo(b).catch(() => undefined);
    });
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return context.getType() !== 'http';
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    if (request.limit === UNLIMITED) return true; // no tenant limit holds this caller
    const passed = await super.handleRequest(request);
    const req = request.context.switchToHttp().getRequest<Request>();
    const tracker = await request.getTracker(req, request.context);
    const bucket = request.generateKey(request.context, tracker, request.throttler.name ?? KEY_THROTTLER);
    this.counted.set(req, [...(this.counted.get(req) ?? []), bucket]);
    return passed;
  }

  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const res = context.switchToHttp().getResponse<Response>();
    const tenant = isTenantBucket(detail.key);
    if (!tenant) {
      res.setHeader('X-RateLimit-Limit', String(detail.limit));
      res.setHeader('X-RateLimit-Remaining', String(Math.max(0, detail.limit - detail.totalHits)));
    }
    res.setHeader('Retry-After', String(detail.timeToBlockExpire));
    throw new AppError(ErrorCode.RATE_LIMITED, await this.getErrorMessage(context, detail), {
      ...(tenant ? { limit: 'rate_limit_per_minute' } : {}),
      retry_after_seconds: detail.timeToBlockExpire,
    });
  }

  /** Throttler also sends X-RateLimit-Reset; taskhub's answers never had it, and still do not. */
  protected override setResponseHeader(res: Record<string, unknown>, name: string, value: string | number): void {
    if (!name.startsWith('X-RateLimit-Reset')) super.setResponseHeader(res, name, value);
  }
}
