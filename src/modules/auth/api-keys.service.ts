import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import type { ApiKeyRole, ApiKeyRow, Principal } from './api-key.types.js';
import { ApiKeysRepository } from './api-keys.repository.js';

const CACHE_TTL_MS = 5_000;
const TOUCH_EVERY_MS = 60_000;
const CACHE_MAX_ENTRIES = 10_000;

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

interface CachedKey {
  row: ApiKeyRow | undefined;
  until: number;
}

/**
 * Keys are 32 random bytes, so a plain SHA-256 is a safe hash and lets the lookup be
 * an index hit. A short cache keeps auth off the hot path; a revoke on this instance
 * clears it at once, other instances within CACHE_TTL_MS.
 */
@Injectable()
export class ApiKeysService {
  private readonly cache = new Map<string, CachedKey>();
  private readonly lastTouch = new Map<string, number>();

  constructor(private readonly repo: ApiKeysRepository) {}

  async create(name: string, role: ApiKeyRole): Promise<{ key: string; row: ApiKeyRow }> {
    const key = `th_${randomBytes(32).toString('base64url')}`;
    const row = await this.repo.insert(name, role, hashKey(key), key.slice(0, 10));
    return { key, row };
  }

  list(): Promise<ApiKeyRow[]> {
    return this.repo.list();
  }

  async revoke(id: string): Promise<ApiKeyRow> {
    const row = await this.repo.revoke(id);
    if (!row) throw AppError.notFound('API key', id);
    this.cache.clear();
    return row;
  }

  hasAdmin(): Promise<boolean> {
    return this.repo.countActiveAdmins().then((n) => n > 0);
  }

  /** The principal for a presented key, or undefined when the key is unknown or revoked. */
  async verify(key: string): Promise<Principal | undefined> {
    const hash = hashKey(key);
    const now = Date.now();
    let cached = this.cache.get(hash);
    if (!cached || cached.until < now) {
      cached = { row: await this.repo.findActiveByHash(hash), until: now + CACHE_TTL_MS };
      // Unknown keys are cached too; bound the map so random keys cannot grow it forever.
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(hash, cached);
    }
    const row = cached.row;
    if (!row) return undefined;
    if ((this.lastTouch.get(row.id) ?? 0) + TOUCH_EVERY_MS < now) {
      this.lastTouch.set(row.id, now);
      await this.repo.touch(row.id);
    }
    return { keyId: row.id, name: row.name, role: row.role };
  }
}
