import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import type { ApiKeyLimits, ApiKeyLimitsInput, ApiKeyRole, ApiKeyRow, Principal } from './api-key.types.js';
import { ApiKeysRepository } from './api-keys.repository.js';

const CACHE_TTL_MS = 5_000;
const TOUCH_EVERY_MS = 60_000;
const CACHE_MAX_ENTRIES = 10_000;
/** Limits are read on every LLM call; a PATCH on this instance applies at once, on others within this. */
const LIMITS_TTL_MS = 1_500;

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Drops absent and null fields; no limit left → null (unlimited). */
function normalizeLimits(limits: ApiKeyLimitsInput | null | undefined): ApiKeyLimits | null {
  if (!limits) return null;
  const kept = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined && v !== null));
  return Object.keys(kept).length > 0 ? (kept as ApiKeyLimits) : null;
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
  private readonly limitsCache = new Map<string, { limits: ApiKeyLimits | null; until: number }>();

  constructor(private readonly repo: ApiKeysRepository) {}

  /** A key with one role or several (the first is its `role`). */
  async create(
    name: string,
    roles: ApiKeyRole | ApiKeyRole[],
    limits: ApiKeyLimitsInput | null = null,
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const key = `th_${randomBytes(32).toString('base64url')}`;
    const list = [...new Set(Array.isArray(roles) ? roles : [roles])];
    const row = await this.repo.insert(name, list, hashKey(key), key.slice(0, 10), normalizeLimits(limits));
    return { key, row };
  }

  /** Merges `patch` into the key's limits: a field given replaces, a null field removes it. */
  async patchLimits(id: string, patch: ApiKeyLimitsInput): Promise<ApiKeyRow> {
    const row = await this.repo.patchLimits(id, patch);
    if (!row) throw AppError.notFound('API key', id);
    this.limitsCache.delete(id);
    return row;
  }

  /** The LLM limits of a key (null: unlimited), cached for LIMITS_TTL_MS. */
  async limitsOf(keyId: string): Promise<ApiKeyLimits | null> {
    const now = Date.now();
    const cached = this.limitsCache.get(keyId);
    if (cached && cached.until >= now) return cached.limits;
    const limits = normalizeLimits(await this.repo.findActiveLimits(keyId));
    if (this.limitsCache.size >= CACHE_MAX_ENTRIES) this.limitsCache.clear();
    this.limitsCache.set(keyId, { limits, until: now + LIMITS_TTL_MS });
    return limits;
  }

  list(): Promise<ApiKeyRow[]> {
    return this.repo.list();
  }

  async revoke(id: string): Promise<ApiKeyRow> {
    const row = await this.repo.revoke(id);
    if (!row) throw AppError.notFound('API key', id);
    this.cache.clear();
    this.limitsCache.delete(id);
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
    return { keyId: row.id, name: row.name, role: row.role, roles: row.roles };
  }
}
