import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export type NodeLogLevel = 'debug' | 'info' | 'warn' | 'error';
export const NODE_LOG_LEVELS: readonly NodeLogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface NodeLogRow {
  id: string;
  node_id: string;
  task_id: string | null;
  level: NodeLogLevel;
  message: string;
  data: unknown;
  created_at: Date;
}

export interface NodeLogFilter {
  /** This level and the more severe ones. */
  level?: NodeLogLevel;
  node_id?: string;
  task_id?: string;
  limit: number;
  offset: number;
}

@Injectable()
export class NodeLogsRepository {
  constructor(private readonly db: DataSource) {}

  /** One statement for a batch of lines. */
  async insertMany(lines: Omit<NodeLogRow, 'id' | 'created_at'>[]): Promise<void> {
    if (lines.length === 0) return;
    await this.db.query(
      `INSERT INTO node_logs (node_id, task_id, level, message, data)
       SELECT node_id, task_id, level, message, data FROM jsonb_to_recordset($1::jsonb)
         AS x(node_id text, task_id uuid, level text, message text, data jsonb)`,
      [JSON.stringify(lines.map((l) => ({ ...l, data: l.data ?? null })))],
    );
  }

  /** Newest first. */
  async list(f: NodeLogFilter): Promise<{ rows: NodeLogRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.level) {
      params.push(NODE_LOG_LEVELS.slice(NODE_LOG_LEVELS.indexOf(f.level)));
      where.push(`level = ANY($${params.length}::text[])`);
    }
    if (f.node_id) {
      params.push(f.node_id);
      where.push(`node_id = $${params.length}`);
    }
    if (f.task_id) {
      params.push(f.task_id);
      where.push(`task_id = $${params.length}`);
    }
    const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const [rows, count] = await Promise.all([
      this.db.query(
        `SELECT * FROM node_logs ${whereSql} ORDER BY id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, f.limit, f.offset],
      ) as Promise<NodeLogRow[]>,
      this.db.query(`SELECT count(*)::int AS n FROM node_logs ${whereSql}`, params) as Promise<{ n: number }[]>,
    ]);
    return { rows, total: count[0].n };
  }

  /** Removes up to `limit` of the lines older than the newest `keep` ids, oldest first. */
  async prune(keep: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM node_logs WHERE id IN (
           SELECT id FROM node_logs WHERE id <= (SELECT max(id) FROM node_logs) - $1 ORDER BY id LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [keep, limit],
    );
    return rows[0].n;
  }
}
