import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { OfferedTool, PluginTool } from './plugin-tools.js';
import type { PluginRow } from './plugin.types.js';

/**
 * All SQL over `plugins`. Each query runs under the caller's tenant (row-level security, set per
 * connection by the database hook), so a name is one tenant's. Names match case-insensitively:
 * `lower(name)` is what the unique index `UQ_plugins_tenant_lower_name` holds.
 */
@Injectable()
export class PluginsRepository {
  constructor(private readonly db: DataSource) {}

  /** Inserts a plugin; undefined when the name is taken (in any case). */
  async insert(name: string, secret: string, tokenHash: string, tools: PluginTool[]): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `INSERT INTO plugins (name, secret, token_hash, tools) VALUES ($1, $2, $3, $4::jsonb)
       ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING *`,
      [name, secret, tokenHash, JSON.stringify(tools)],
    );
    return rows[0];
  }

  async findByName(name: string): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(`SELECT * FROM plugins WHERE lower(name) = lower($1)`, [name]);
    return rows[0];
  }

  async list(limit: number, offset: number): Promise<{ rows: PluginRow[]; total: number }> {
    const [rows, count]: [PluginRow[], { n: number }[]] = await Promise.all([
      this.db.query(`SELECT * FROM plugins ORDER BY lower(name) LIMIT $1 OFFSET $2`, [limit, offset]),
      this.db.query(`SELECT count(*)::int AS n FROM plugins`),
    ]);
    return { rows, total: count[0].n };
  }

  async delete(name: string): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `WITH d AS (DELETE FROM plugins WHERE lower(name) = lower($1) RETURNING *) SELECT * FROM d`,
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
         WHERE lower(name) = lower($1)
         RETURNING *
       )
       SELECT * FROM u`,
      [name, secret, tokenHash, graceSeconds],
    );
    return rows[0];
  }

  /** Replaces the plugin's tools; undefined for an unknown plugin. */
  async setTools(name: string, tools: PluginTool[]): Promise<PluginRow | undefined> {
    const rows: PluginRow[] = await this.db.query(
      `WITH u AS (UPDATE plugins SET tools = $2::jsonb WHERE lower(name) = lower($1) RETURNING *) SELECT * FROM u`,
      [name, JSON.stringify(tools)],
    );
    return rows[0];
  }

  /** Every tool of the tenant's plugins, by plugin name then in the order declared. */
  async tools(): Promise<OfferedTool[]> {
    return this.db.query(
      `SELECT p.name AS plugin, t.tool->>'name' AS name, t.tool->>'description' AS description,
              CASE WHEN jsonb_typeof(t.tool->'parameters') = 'object' THEN t.tool->'parameters' END AS parameters
       FROM plugins p CROSS JOIN LATERAL jsonb_array_elements(p.tools) WITH ORDINALITY AS t(tool, n)
       ORDER BY lower(p.name), t.n`,
    );
  }
}
