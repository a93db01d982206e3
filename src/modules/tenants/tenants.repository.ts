import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { TenantLimits, TenantRow } from './tenant.types.js';

const isUniqueViolation = (e: unknown): boolean => {
  const err = e as { code?: string; driverError?: { code?: string } };
  return err.code === '23505' || err.driverError?.code === '23505';
};

/** The id or the name is taken. */
export const DUPLICATE_TENANT = Symbol('duplicate-tenant');

/**
 * Tenants. Row-level security on `tenants` shows a tenant's context its own row only and lets
 * only the system ('*') write: callers run these as the global admin's request or as the system.
 */
@Injectable()
export class TenantsRepository {
  constructor(private readonly db: DataSource) {}

  async insert(id: string, name: string, limits: TenantLimits): Promise<TenantRow | typeof DUPLICATE_TENANT> {
    try {
      const rows: TenantRow[] = await this.db.query(
        `INSERT INTO tenants (id, name, limits) VALUES ($1, $2, $3::jsonb) RETURNING *`,
        [id, name, JSON.stringify(limits)],
      );
      return rows[0];
    } catch (e) {
      if (isUniqueViolation(e)) return DUPLICATE_TENANT;
      throw e;
    }
  }

  /** `only`: that tenant's row alone (a tenant admin's list), filtered here and not left to row-level security. */
  async list(limit: number, offset: number, only: string | null): Promise<{ rows: TenantRow[]; total: number }> {
    const [rows, [{ n }]] = (await Promise.all([
      this.db.query(
        `SELECT * FROM tenants WHERE ($3::text IS NULL OR id = $3) ORDER BY created_at, id LIMIT $1 OFFSET $2`,
        [limit, offset, only],
      ),
      this.db.query(`SELECT count(*)::int AS n FROM tenants WHERE ($1::text IS NULL OR id = $1)`, [only]),
    ])) as [TenantRow[], { n: number }[]];
    return { rows, total: n };
  }

  async findById(id: string): Promise<TenantRow | undefined> {
    const rows: TenantRow[] = await this.db.query(`SELECT * FROM tenants WHERE id = $1`, [id]);
    return rows[0];
  }

  async updateLimits(id: string, limits: TenantLimits): Promise<TenantRow | undefined> {
    // In a CTE: TypeORM answers a bare UPDATE … RETURNING with [rows, count].
    const rows: TenantRow[] = await this.db.query(
      `WITH u AS (UPDATE tenants SET limits = $2::jsonb WHERE id = $1 RETURNING *) SELECT * FROM u`,
      [id, JSON.stringify(limits)],
    );
    return rows[0];
  }

  /** Deletes the tenant; every row it owns goes with it (ON DELETE CASCADE on each tenant_id). */
  async delete(id: string): Promise<TenantRow | undefined> {
    const rows: TenantRow[] = await this.db.query(
      `WITH d AS (DELETE FROM tenants WHERE id = $1 RETURNING *) SELECT * FROM d`,
      [id],
    );
    return rows[0];
  }

  async allLimits(): Promise<{ id: string; limits: TenantLimits }[]> {
    return this.db.query(`SELECT id, limits FROM tenants ORDER BY id`);
  }

  /** The tenant a task belongs to (callers run as the system: plugin callbacks find theirs so). */
  async tenantOfTask(taskId: string): Promise<string | undefined> {
    const rows: { tenant_id: string }[] = await this.db.query(`SELECT tenant_id FROM tasks WHERE id = $1`, [taskId]);
    return rows[0]?.tenant_id;
  }
}
