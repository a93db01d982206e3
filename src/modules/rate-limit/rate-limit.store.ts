import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../common/redis.js';

export interface WindowCount {
  count: number;
  /** Milliseconds until the window resets. */
  resetInMs: number;
}

/** What the throttler's guard reads off a hit (@nestjs/throttler's `ThrottlerStorageRecord`). */
export interface ThrottlerRecord {
  totalHits: number;
  /** Seconds until the window resets. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until a blocked key may try again (the Retry-After), at least 1; 0 when not blocked. */
  timeToBlockExpire: number;
}

/**
 * Fixed-window hit counters: in memory for one process, in Redis when hubs share limits. A key's
 * first hit opens a window of `windowMs`; every hit counts, refused ones too.
 *
 * The store behind @nestjs/throttler (`increment`: past `limit` the key is refused until its
 * window ends; throttler's `blockDuration` is not used, a fixed window blocks to its own end),
 * and the plugin-callback limiter's (`hit`).
 */
export abstract class RateLimitStore implements ThrottlerStorage, OnApplicationShutdown {
  abstract hit(key: string, windowMs: number): Promise<WindowCount>;
  /** Takes back one hit of the current window (a request that, by the skip settings, does not count). */
  abstract undo(key: string): Promise<void>;
  abstract close(): Promise<void>;

  /** Nest closes the throttler's store (a provider); other owners call close() themselves. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerRecord> {
    const { count, resetInMs } = await this.hit(key, ttl);
    const seconds = Math.max(1, Math.ceil(resetInMs / 1000));
    const isBlocked = count > limit;
    return { totalHits: count, timeToExpire: seconds, isBlocked, timeToBlockExpire: isBlocked ? seconds : 0 };
  }
}

export class MemoryRateLimitStore extends RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private readonly sweeper = setInterval(() => {
    const now = Date.now();
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }, 60_000);

  constructor() {
    super();
    this.sweeper.unref();
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return { count: w.count, resetInMs: w.resetAt - now };
  }

  async undo(key: string): Promise<void> {
    const w = this.windows.get(key);
    if (w && w.resetAt > Date.now() && w.count > 0) w.count--;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}

export class RedisRateLimitStore extends RateLimitStore {
  constructor(private readonly redis: Redis) {
    super();
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const k = `taskhub:rl:${key}`;
    // One atomic round trip (MULTI): create the window if missing, count, read its remaining time.
    const results = await this.redis.multi().set(k, '0', 'PX', windowMs, 'NX').incr(k).pttl(k).exec();
    const count = Number(results?.[1]?.[1] ?? 1);
    const ttl = Number(results?.[2]?.[1] ?? windowMs);
    return { count, resetInMs: ttl > 0 ? ttl : windowMs };
  }

  async undo(key: string): Promise<void> {
    // Only within a live window: a DECR on an expired key would create one without a TTL.
    await this.redis.eval(
      `if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0`,
      1,
      `taskhub:rl:${key}`,
    );
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** The shared store when REDIS_URL is set (so N hubs enforce one limit), else this process's memory. */
export function createRateLimitStore(redisUrl: string | undefined): RateLimitStore {
  return redisUrl ? new RedisRateLimitStore(createRedisClient(redisUrl, 'rate-limit')) : new MemoryRateLimitStore();
}
