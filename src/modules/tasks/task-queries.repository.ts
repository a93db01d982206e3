import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { EventLevel, TaskEventRow, TaskRow, TaskState } from './task.types.js';

export interface TaskListFilter {
  states?: TaskState[];
  priorities?: number[];
  tag?: string;
  type?: string;
  workerId?: string;
  nodeId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  sort: 'created_at' | 'priority' | 'started_at' | 'completed_at';
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

export interface EventFilter {
  since?: Date;
  levels?: EventLevel[];
  limit: number;
}

/** Read-only queries over tasks and their events: lists, logs and statistics. */
@Injectable()
export class TaskQueriesRepository {
  constructor(private readonly db: DataSource) {}

  async list(f: TaskListFilter): Promise<{ rows: TaskRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown): void => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (f.states?.length) add((p) => `status = ANY(${p}::text[])`, f.states);
    if (f.priorities?.length) add((p) => `priority = ANY(${p}::smallint[])`, f.priorities);
    if (f.tag) add((p) => `tags @> ARRAY[${p}::text]`, f.tag);
    if (f.type) add((p) => `type = ${p}`, f.type);
    if (f.workerId) add((p) => `worker_id = ${p}`, f.workerId);
    if (f.nodeId) add((p) => `node_id = ${p}`, f.nodeId);
    if (f.createdAfter) add((p) => `created_at >= ${p}`, f.createdAfter);
    if (f.createdBefore) add((p) => `created_at < ${p}`, f.createdBefore);
    const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // sort and order come from a whitelist in the DTO; nulls last keeps unstarted tasks at the end.
    const orderSql = `ORDER BY ${f.sort} ${f.order === 'asc' ? 'ASC' : 'DESC'} NULLS LAST, id ${f.order === 'asc' ? 'ASC' : 'DESC'}`;
    const rows: (TaskRow & { total_count: string })[] = await this.db.query(
      `SELECT *, count(*) OVER() AS total_count FROM tasks ${whereSql} ${orderSql}
       LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, f.limit, f.offset],
    );
    if (rows.length > 0 || f.offset === 0) {
      return { rows, total: rows.length ? Number(rows[0].total_count) : 0 };
    }
    const count: { n: string }[] = await this.db.query(`SELECT count(*) AS n FROM tasks ${whereSql}`, params);
    return { rows, total: Number(count[0].n) };
  }

  async events(taskId: string, f: EventFilter): Promise<TaskEventRow[]> {
    return this.db.query(
      `SELECT id, task_id, at, type, level, message, attempt, data FROM task_events
       WHERE task_id = $1 AND ($2::timestamptz IS NULL OR at > $2) AND ($3::text[] IS NULL OR level = ANY($3))
       ORDER BY id LIMIT $4`,
      [taskId, f.since ?? null, f.levels ?? null, f.limit],
    );
  }

  /** Mean start-to-completion time (ms) of the last `sample` completed tasks of `type` (IDX_tasks_completed_type), or null. */
  async recentMeanRunMs(type: string, sample: number): Promise<number | null> {
    const [row]: { ms: string | number | null }[] = await this.db.query(
      `SELECT avg(extract(epoch FROM r.completed_at - r.started_at) * 1000) AS ms FROM (
         SELECT started_at, completed_at FROM tasks
         WHERE status = 'completed' AND type = $1 AND started_at IS NOT NULL
         ORDER BY completed_at DESC LIMIT $2
       ) r`,
      [type, sample],
    );
    return row.ms === null ? null : Math.round(Number(row.ms));
  }
}
