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
import { hashKey } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';
import { createRateLimitStore, type RateLimitStore } from './rate-limit.store.js';

const SKIP = 'taskhub:skip-rate-limit';
/** Health, metrics and docs are not rate limited. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator => SetMetadata(SKIP, true);

/**
 * Per API key (per client IP without one) fixed-window limit: RATE_LIMIT_MAX requests
 * every RATE_LIMIT_WINDOW_MS, then 429 RATE_LIMITED with Retry-After. Shared through Redis
 * when REDIS_URL is set, so N hubs enforce one limit. RATE_LIMIT_SKIP_SUCCESSFUL / _FAILED take
 * a request's hit back once it is answered below / from 400 (seed 000 `skip…Requests`).
 */
@Injectable()
export class RateLimitGuard implements CanActivate, OnApplicationShutdown {
  private readonly store: RateLimitStore;

  constructor(
    private readonly reflector: Reflector,
    private readonly config: AppConfig,
  ) {
    this.store = createRateLimitStore(config.REDIS_URL);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http' || this.config.RATE_LIMIT_MAX === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(SKIP, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const res = context.switchToHttp().getResponse<Response>();
    // Per key whether or not the key guard ran first: the key's hash names the bucket.
    const token = bearerToken(req.headers.authorization);
    const who = token ? `key:${hashKey(token).slice(0, 32)}` : `ip:${req.ip ?? 'unknown'}`;
    const { count, resetInMs } = await this.store.hit(who, this.config.RATE_LIMIT_WINDOW_MS);
    const limit = this.config.RATE_LIMIT_MAX;
    res.setHeader('X-RateLimit-Limit', String(limit));
    res.setHeader('X-RateLimit-Remaining', String(Math.max(0, limit - count)));
    if (count <= limit) {
      const { RATE_LIMIT_SKIP_SUCCESSFUL: skipOk, RATE_LIMIT_SKIP_FAILED: skipFailed } = this.config;
      if (skipOk || skipFailed) {
        res.once('finish', () => {
          if (res.statusCode < 400 ? skipOk : skipFailed) this.store.undo(who).catch(() => undefined);
        });
      }
      return true;
    }
    const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
    res.setHeader('Retry-After', String(retryAfter));
    const message =
      this.config.RATE_LIMIT_MESSAGE ??
      `Rate limit of ${limit} requests per ${this.config.RATE_LIMIT_WINDOW_MS / 1000}s exceeded`;
    throw new AppError(ErrorCode.RATE_LIMITED, message, { retry_after_seconds: retryAfter });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
