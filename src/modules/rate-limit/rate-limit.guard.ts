import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type OnApplicationShutdown,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService, hashKey } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';
import { clientAddress } from '../edge/client-address.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { createRateLimitStore, type RateLimitStore } from './rate-limit.store.js';

const SKIP = 'taskhub:skip-rate-limit';
/** A tenant's `rate_limit_per_minute` counts in fixed windows of a minute. */
const TENANT_WINDOW_MS = 60_000;

/** Health, metrics and docs are not rate limited. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator => SetMetadata(SKIP, true);

/**
 * Per API key (per client IP without one) fixed-window limit: RATE_LIMIT_MAX requests
 * every RATE_LIMIT_WINDOW_MS, then 429 RATE_LIMITED with Retry-After. Shared through Redis
 * when REDIS_URL is set, so N hubs enforce one limit. RATE_LIMIT_SKIP_SUCCESSFUL / _FAILED take
 * a request's hit back once it is answered below / from 400 (seed 000 `skip…Requests`).
 * On top of that, the keys of a tenant whose `limits.rate_limit_per_minute` is set share one
 * bucket of that many requests a minute (docs/tenants.md, Limits; a global admin acting for a
 * tenant is not held to it).
 */
@Injectable()
export class RateLimitGuard implements CanActivate, OnApplicationShutdown {
  private readonly store: RateLimitStore;

  constructor(
    private readonly reflector: Reflector,
    private readonly config: AppConfig,
    private readonly tenants: TenantsService,
    private readonly keys: ApiKeysService,
  ) {
    this.store = createRateLimitStore(config.REDIS_URL);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(SKIP, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const res = context.switchToHttp().getResponse<Response>();
    const buckets: string[] = [];
    if (this.config.RATE_LIMIT_MAX > 0) buckets.push(await this.hitKey(req, res));
    const tenantBucket = await this.hitTenant(req, res);
    if (tenantBucket) buckets.push(tenantBucket);
    const { RATE_LIMIT_SKIP_SUCCESSFUL: skipOk, RATE_LIMIT_SKIP_FAILED: skipFailed } = this.config;
    if (buckets.length > 0 && (skipOk || skipFailed)) {
      res.once('finish', () => {
        if (res.statusCode < 400 ? skipOk : skipFailed)
          for (const b of buckets) this.store.undo(b).catch(() => undefined);
      });
    }
    return true;
  }

  /** The per-key (or per-IP) window; its bucket, or a 429. */
  private async hitKey(req: Request, res: Response): Promise<string> {
    // Per key whether or not the key guard ran first: the key's hash names the bucket.
    const token = bearerToken(req.headers.authorization);
    const who = token ? `key:${hashKey(token).slice(0, 32)}` : `ip:${clientAddress(req)}`;
    const { count, resetInMs } = await this.store.hit(who, this.config.RATE_LIMIT_WINDOW_MS);
    const limit = this.config.RATE_LIMIT_MAX;
    res.setHeader('X-RateLimit-Limit', String(limit));
    res.setHeader('X-RateLimit-Remaining', String(Math.max(0, limit - count)));
    if (count <= limit) return who;
    const message =
      this.config.RATE_LIMIT_MESSAGE ??
      `Rate limit of ${limit} requests per ${this.config.RATE_LIMIT_WINDOW_MS / 1000}s exceeded`;
    throw refused(res, resetInMs, message);
  }

  /** The tenant's shared window when the caller's key belongs to a tenant with a rate limit; its bucket, or a 429. */
  private async hitTenant(req: Request, res: Response): Promise<string | undefined> {
    // The key guard may not have run yet (guard order): the key lookup is cached, so ask it.
    const token = bearerToken(req.headers.authorization);
    const principal = req.principal ?? (token ? await this.keys.verify(token) : undefined);
    const tenantId = principal?.isGlobalAdmin ? null : principal?.tenantId;
    if (!tenantId) return undefined;
    const limit = (await this.tenants.limitsOf(tenantId)).rate_limit_per_minute;
    if (limit === undefined) return undefined;
    const bucket = `tenant:${tenantId}`;
    const { count, resetInMs } = await this.store.hit(bucket, TENANT_WINDOW_MS);
    if (count <= limit) return bucket;
    throw refused(res, resetInMs, `Tenant rate limit of ${limit} requests per minute exceeded`, {
      limit: 'rate_limit_per_minute',
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}

function refused(res: Response, resetInMs: number, message: string, details: Record<string, unknown> = {}): AppError {
  const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
  res.setHeader('Retry-After', String(retryAfter));
  return new AppError(ErrorCode.RATE_LIMITED, message, { ...details, retry_after_seconds: retryAfter });
}
