import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { PluginRow } from './plugin.types.js';

/** All SQL over `plugins`. */
@Injectable()
export class PluginsRepository {
  constructor(private readonly db: DataSource) {}

  /** Inserts a plugin; undefined when the name is taken. */
  async insert(name: string, secret: string, tokenHash: string): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `INSERT INTO plugins (name, secret, token_hash) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *`,
      [name, secret, tokenHash],
    );
    return rows[0];
  }

  async findByName(name: string): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(`SELECT * FROM plugins WHERE name = $1`, [name]);
    return rows[0];
  }

  async list(limit: number, offset: number): Promise<{ rows: PluginRow[]; total: number }> {
    const [rows, count]: [PluginRow[], { n: number }[]] = await Promise.all([
      this.db.query(`SELECT * FROM plugins ORDER BY name LIMIT $1 OFFSET $2`, [limit, offset]),
      this.db.query(`SELECT count(*)::int AS n FROM plugins`),
    ]);
    return { rows, total: count[0].n };
  }

  async delete(name: string): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `WITH d AS (DELETE FROM plugins WHERE name = $1 RETURNING *) SELECT * FROM d`,
      [name],
    );
    return rows[0];
  }

  /** New secret and token; the current ones become the previous ones, valid for `graceSeconds` more. */
  async rotate(name: string, secret: string, tokenHash: string, graceSeconds: number): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `WITH u AS (
         UPDATE plugins SET previous_secret = secret, previous_token_hash = token_hash, secret = $2, token_hash = $3,
           rotated_at = now(), rotated_until = now() + make_interval(secs => $4)
         WHERE name = $1
         RETURNING *
       )
       SELECT * FROM u`,
      [name, secret, tokenHash, graceSeconds],
    );
    return rows[0];
  }
}
