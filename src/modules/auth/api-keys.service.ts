import { createHash, randomBytes } from 'node:crypto';
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { currentTenantSetting, DEFAULT_TENANT, runAsSystem, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { tenantNotFound, TenantsService } from '../tenants/tenants.service.js';
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
 * clears it at once, other instances within CACHE_TTL_MS. So does a tenant's deletion: on
 * another instance its keys pass the guard until then, acting for a tenant whose rows are gone.
 */
@Injectable()
export class ApiKeysService implements OnModuleInit, OnModuleDestroy {
  private readonly cache = new Map<string, CachedKey>();
  private readonly lastTouch = new Map<string, number>();
  private readonly limitsCache = new Map<string, { limits: ApiKeyLimits | null; until: number }>();

  private unsubscribe?: () => void;

  constructor(
    private readonly repo: ApiKeysRepository,
    private readonly tenants: TenantsService,
    private readonly events: EventBus,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.events.on('tenant.deleted', ({ tenantId }) => this.forgetTenant(tenantId));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** Drops the cached keys of a deleted tenant, so they are refused at once on this instance. */
  private forgetTenant(tenantId: string): void {
    for (const [hash, cached] of this.cache) {
      if (cached.row?.tenant_id !== tenantId) continue;
      this.cache.delete(hash);
      this.limitsCache.delete(cached.row.id);
    }
  }

  /**
   * A key made through the API (docs/tenants.md). `tenantId` absent: the tenant the caller acts
   * for (a global admin acting for all: default); null: a global key, global admins only, and
   * only with the admin role. A tenant's admin makes keys in its own tenant only; another
   * tenant is TENANT_NOT_FOUND, as an unknown one is.
   */
  async createFor(
    who: Principal,
    name: string,
    roles: ApiKeyRole[],
    limits: ApiKeyLimitsInput | null,
    tenantId: string | null | undefined,
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const acting = currentTenantSetting();
    const tenant = tenantId === undefined ? (acting === SYSTEM_TENANT ? DEFAULT_TENANT : acting) : tenantId;
    if (!who.isGlobalAdmin) {
      if (tenant === null) throw new AppError(ErrorCode.FORBIDDEN, 'Only a global admin makes global keys');
      if (tenant !== who.tenantId) throw tenantNotFound(tenant);
      return this.create(name, roles, limits, tenant);
    }
    if (tenant === null && !roles.includes('admin'))
      throw AppError.validation('tenant_id', 'a global key (tenant_id null) must have the admin role');
    if (tenant !== null && !(await this.tenants.exists(tenant))) throw tenantNotFound(tenant);
    // As the system: a global admin acting for one tenant may still make a key in another.
    return runAsSystem(() => this.create(name, roles, limits, tenant));
  }

  /**
   * A key with one role or several (the first is its `role`), in `tenantId` (null: a global key;
   * who may make which is the caller's check, ApiKeysController).
   */
  async create(
    name: string,
    roles: ApiKeyRole | ApiKeyRole[],
    limits: ApiKeyLimitsInput | null = null,
    tenantId: string | null = DEFAULT_TENANT,
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const key = `th_${randomBytes(32).toString('base64url')}`;
    const list = [...new Set(Array.isArray(roles) ? roles : [roles])];
    const row = await this.repo.insert(name, list, hashKey(key), key.slice(0, 10), normalizeLimits(limits), tenantId);
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
    // The caller's own key, whatever tenant it acts for now (a global key may be acting for one).
    const limits = normalizeLimits(await runAsSystem(() => this.repo.findActiveLimits(keyId)));
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

  /** Whether an active global admin exists (runs at boot, as the system). */
  hasGlobalAdmin(): Promise<boolean> {
    return this.repo.countActiveGlobalAdmins().then((n) => n > 0);
  }

  /**
   * The principal for a presented key, or undefined when the key is unknown or revoked. Looked
   * up as the system: the caller's tenant is what this finds out.
   */
  verify(key: string): Promise<Principal | undefined> {
    return runAsSystem(() => this.lookup(key));
  }

  private async lookup(key: string): Promise<Principal | undefined> {
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
    return {
      keyId: row.id,
      name: row.name,
      role: row.role,
      roles: row.roles,
      tenantId: row.tenant_id,
      isGlobalAdmin: row.tenant_id === null && row.roles.includes('admin'),
    };
  }
}
