import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ApiKeyLimits, ApiKeyLimitsInput, ApiKeyRole, ApiKeyRow } from './api-key.types.js';

const COLUMNS = 'id, name, role, roles, prefix, created_at, last_used_at, revoked_at, limits, tenant_id';

@Injectable()
export class ApiKeysRepository {
  constructor(private readonly db: DataSource) {}

  async insert(
    name: string,
    roles: ApiKeyRole[],
    keyHash: string,
    prefix: string,
    limits: ApiKeyLimits | null,
    tenantId: string | null,
  ): Promise<ApiKeyRow> {
    const rows: ApiKeyRow[] = await this.db.query(
      `INSERT INTO api_keys (name, role, roles, key_hash, prefix, limits, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [name, roles[0], roles, keyHash, prefix, limits === null ? null : JSON.stringify(limits), tenantId],
    );
    return rows[0];
  }

  /** Merges `patch` into the key's limits (a null field removes it); no limit left → null. */
  async patchLimits(id: string, patch: ApiKeyLimitsInput): Promise<ApiKeyRow | undefined> {
    const rows: ApiKeyRow[] = await this.db.query(
      `WITH u AS (
         UPDATE api_keys SET limits = NULLIF(jsonb_strip_nulls(COALESCE(limits, '{}'::jsonb) || $2::jsonb), '{}'::jsonb)
         WHERE id = $1 RETURNING ${COLUMNS})
       SELECT * FROM u`,
      [id, JSON.stringify(patch)],
    );
    return rows[0];
  }

  /** The limits of an active key (null: unlimited or no such active key). */
  async findActiveLimits(id: string): Promise<ApiKeyLimits | null> {
    const rows: { limits: ApiKeyLimits | null }[] = await this.db.query(
      `SELECT limits FROM api_keys WHERE id = $1 AND revoked_at IS NULL`,
      [id],
    );
    return rows[0]?.limits ?? null;
  }

  async findActiveByHash(keyHash: string): Promise<ApiKeyRow | undefined> {
    const rows: ApiKeyRow[] = await this.db.query(
      `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [keyHash],
    );
    return rows[0];
  }

  async list(): Promise<ApiKeyRow[]> {
    return this.db.query(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at`);
  }

  async revoke(id: string): Promise<ApiKeyRow | undefined> {
    const rows: ApiKeyRow[] = await this.db.query(
      // Wrapped in a CTE: TypeORM answers a bare UPDATE with [rows, count], a SELECT with rows.
      `WITH u AS (UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS})
       SELECT * FROM u`,
      [id],
    );
    return rows[0];
  }

  async touch(id: string): Promise<void> {
    await this.db.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1`, [id]);
  }

  /** Active global admins: the bootstrap makes one when there is none. */
  async countActiveGlobalAdmins(): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `SELECT count(*)::int AS n FROM api_keys WHERE 'admin' = ANY(roles) AND revoked_at IS NULL AND tenant_id IS NULL`,
    );
    return rows[0].n;
  }
}
