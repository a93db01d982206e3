import { type ExecutionContext, Injectable } from '@nestjs/common';
import type { ThrottlerModuleOptions, ThrottlerOptionsFactory } from '@nestjs/throttler';
import type { Request } from 'express';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService, hashKey } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';
import { clientAddress } from '../edge/client-address.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { createRateLimitStore } from './rate-limit.store.js';

/**
 * The two throttlers, in the order the guard checks them: the caller's own window (throttler's
 * `default`, so its headers carry no suffix), then its tenant's.
 */
export const KEY_THROTTLER = 'default';
export const TENANT_THROTTLER = 'tenant';
/** A tenant's `rate_limit_per_minute` counts in fixed windows of a minute. */
const TENANT_WINDOW_MS = 60_000;
const TENANT_BUCKET = 'tenant:';
/** The tenant throttler's limit for a caller no tenant limit holds: the guard lets it by without a hit. */
export const UNLIMITED = Number.POSITIVE_INFINITY;

interface TenantBucket {
  tenantId: string;
  limit: number;
}

/**
 * @nestjs/throttler configured for taskhub. Per API key (per client IP without one): a fixed
 * window of RATE_LIMIT_MAX requests every RATE_LIMIT_WINDOW_MS (both hot: read per request),
 * one bucket across all routes. On top of that, the keys of a tenant whose
 * `limits.rate_limit_per_minute` is set share one bucket of that many requests a minute
 * (docs/tenants.md, Limits; a global admin acting for a tenant is not held to it). The counters
 * are a RateLimitStore: Redis when REDIS_URL is set, so N hubs enforce one limit.
 */
@Injectable()
export class RateLimitOptions implements ThrottlerOptionsFactory {
  /** Per request: the tenant throttler asks for its limit, then for its tracker. */
  private readonly tenantBuckets = new WeakMap<Request, Promise<TenantBucket | undefined>>();

  constructor(
    private readonly config: AppConfig,
    private readonly tenants: TenantsService,
    private readonly keys: ApiKeysService,
  ) {}

  createThrottlerOptions(): ThrottlerModuleOptions {
    const { config } = this;
    return {
      storage: createRateLimitStore(config.REDIS_URL),
      throttlers: [
        {
          name: KEY_THROTTLER,
          limit: () => config.RATE_LIMIT_MAX,
          ttl: () => config.RATE_LIMIT_WINDOW_MS,
          skipIf: () => config.RATE_LIMIT_MAX === 0,
          getTracker: (req) => keyOrIp(req as Request),
        },
        {
          name: TENANT_THROTTLER,
          ttl: TENANT_WINDOW_MS,
          limit: async (context) => (await this.tenantBucket(requestOf(context)))?.limit ?? UNLIMITED,
          getTracker: async (req) => `${TENANT_BUCKET}${(await this.tenantBucket(req as Request))?.tenantId}`,
          setHeaders: false,
        },
      ],
      // The tracker is the bucket: one per caller across all routes (throttler's own key is per route).
      generateKey: (_context, tracker) => tracker,
      errorMessage: (_context, { key, limit, ttl }) =>
        isTenantBucket(key)
          ? `Tenant rate limit of ${limit} requests per minute exceeded`
          : (config.RATE_LIMIT_MESSAGE ?? `Rate limit of ${limit} requests per ${ttl / 1000}s exceeded`),
    };
  }

  private tenantBucket(req: Request): Promise<TenantBucket | undefined> {
    let bucket = this.tenantBuckets.get(req);
    if (!bucket) {
      bucket = this.findTenantBucket(req);
      this.tenantBuckets.set(req, bucket);
    }
    return bucket;
  }

  private async findTenantBucket(req: Request): Promise<TenantBucket | undefined> {
    // The key guard may not have run yet (guard order): the key lookup is cached, so ask it.
    const token = bearerToken(req.headers.authorization);
    const principal = req.principal ?? (token ? await this.keys.verify(token) : undefined);
    const tenantId = principal?.isGlobalAdmin ? null : principal?.tenantId;
    if (!tenantId) return undefined;
    const limit = (await this.tenants.limitsOf(tenantId)).rate_limit_per_minute;
    return limit === undefined ? undefined : { tenantId, limit };
  }
}

/** Per key whether or not the key guard ran first: the key's hash names the bucket. */
function keyOrIp(req: Request): string {
  const token = bearerToken(req.headers.authorization);
  return token ? `key:${hashKey(token).slice(0, 32)}` : `ip:${clientAddress(req)}`;
}

export function isTenantBucket(key: string): boolean {
  return key.startsWith(TENANT_BUCKET);
}

function requestOf(context: ExecutionContext): Request {
  return context.switchToHttp().getRequest<Request>();
}
