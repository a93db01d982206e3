import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { DEFAULT_TENANT, runAsSystem } from '../../database/tenant-context.js';
import type { Principal } from '../auth/api-key.types.js';
import type { TenantLimits, TenantRow } from './tenant.types.js';
import { DUPLICATE_TENANT, TenantsRepository } from './tenants.repository.js';

/** How long a tenant's limits are cached: another hub sees a PATCH within this time. */
const LIMITS_TTL_MS = 2_000;
const LIMITS_CACHE_MAX = 10_000;

export const tenantNotFound = (id: string): AppError =>
  new AppError(ErrorCode.TENANT_NOT_FOUND, `Tenant not found: ${id}`);

/**
 * Tenants are managed by global admins. A tenant's admin may read its own tenant; any other
 * tenant is a 404 to it, never a 403 (no existence leak).
 */
@Injectable()
export class TenantsService {
  private readonly limitsCache = new Map<string, { limits: TenantLimits; until: number }>();

  constructor(
    private readonly repo: TenantsRepository,
    private readonly events: EventBus,
  ) {}

  async create(who: Principal, input: { id?: string; name: string; limits?: TenantLimits }): Promise<TenantRow> {
    if (!who.isGlobalAdmin) throw new AppError(ErrorCode.FORBIDDEN, 'Only a global admin creates tenants');
    const row = await this.repo.insert(input.id ?? randomUUID(), input.name, input.limits ?? {});
    if (row === DUPLICATE_TENANT) throw new AppError(ErrorCode.CONFLICT, 'A tenant with this id or name exists');
    return row;
  }

  /** Global admins see every tenant; anyone else only their own (row-level security backs that up). */
  list(who: Principal, limit: number, offset: number): Promise<{ rows: TenantRow[]; total: number }> {
    return this.repo.list(limit, offset, who.isGlobalAdmin ? null : (who.tenantId ?? DEFAULT_TENANT));
  }

  async get(who: Principal, id: string): Promise<TenantRow> {
    const row = who.isGlobalAdmin || who.tenantId === id ? await this.repo.findById(id) : undefined;
    if (!row) throw tenantNotFound(id);
    return row;
  }

  /** Replaces a tenant's limits (global admin); this hub applies them at once, others within LIMITS_TTL_MS. */
  async updateLimits(who: Principal, id: string, limits: TenantLimits): Promise<TenantRow> {
    if (!who.isGlobalAdmin) {
      if (who.tenantId === id) throw new AppError(ErrorCode.FORBIDDEN, 'Only a global admin changes tenant limits');
      throw tenantNotFound(id);
    }
    const row = await this.repo.updateLimits(id, limits);
    if (!row) throw tenantNotFound(id);
    this.limitsCache.delete(id);
    return row;
  }

  /**
   * A tenant's limits for enforcement (rate limits, LLM budget, max_tasks): read as the system,
   * cached for LIMITS_TTL_MS; an unknown tenant has none.
   */
  async limitsOf(id: string): Promise<TenantLimits> {
    const now = Date.now();
    const cached = this.limitsCache.get(id);
    if (cached && cached.until >= now) return cached.limits;
    const limits = (await runAsSystem(() => this.repo.findById(id)))?.limits ?? {};
    if (this.limitsCache.size >= LIMITS_CACHE_MAX) this.limitsCache.clear();
    this.limitsCache.set(id, { limits, until: now + LIMITS_TTL_MS });
    return limits;
  }

  async remove(who: Principal, id: string): Promise<TenantRow> {
    if (!who.isGlobalAdmin) {
      if (who.tenantId === id) throw new AppError(ErrorCode.FORBIDDEN, 'Only a global admin deletes tenants');
      throw tenantNotFound(id);
    }
    if (id === DEFAULT_TENANT) throw new AppError(ErrorCode.CONFLICT, 'The default tenant cannot be deleted');
    const row = await this.repo.delete(id);
    if (!row) throw tenantNotFound(id);
    this.limitsCache.delete(id);
    // Its keys are gone from the database; this hub's key cache forgets them now (others within its TTL).
    this.events.publish('tenant.deleted', { tenantId: id });
    return row;
  }

  /** Every tenant's id and limits, read as the system (retention reads them once per pass). */
  allLimits(): Promise<{ id: string; limits: TenantLimits }[]> {
    return runAsSystem(() => this.repo.allLimits());
  }

  /** Whether a tenant exists (the key guard's check of X-Tenant-Id; looked up as the system). */
  async exists(id: string): Promise<boolean> {
    return (await runAsSystem(() => this.repo.findById(id))) !== undefined;
  }

  /** The tenant of a task, whoever holds it (plugin callbacks); undefined when there is no such task. */
  tenantOfTask(taskId: string): Promise<string | undefined> {
    return runAsSystem(() => this.repo.tenantOfTask(taskId));
  }
}
