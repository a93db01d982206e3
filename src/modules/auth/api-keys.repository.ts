import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ApiKeyRole, ApiKeyRow } from './api-key.types.js';

const COLUMNS = 'id, name, role, prefix, created_at, last_used_at, revoked_at';

@Injectable()
export class ApiKeysRepository {
  constructor(private readonly db: DataSource) {}

  async insert(name: string, role: ApiKeyRole, keyHash: string, prefix: string): Promise<ApiKeyRow> {
    const rows: ApiKeyRow[] = await this.db.query(
      `INSERT INTO api_keys (name, role, key_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [name, role, keyHash, prefix],
    );
    return rows[0];
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

  async countActiveAdmins(): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `SELECT count(*)::int AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL`,
    );
    return rows[0].n;
  }
}
