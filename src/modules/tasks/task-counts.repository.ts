import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { TaskState } from './task.types.js';

/**
 * Tasks per (tenant, state, priority): the folded counts plus the deltas not folded yet, read in
 * one snapshot, so the sum is exactly what `count(*)` would say (migration 1765700000000).
 * Row-level security limits it to the caller's tenant like any other read.
 */
const COUNTS = `(SELECT tenant_id, status, priority, n FROM task_counts
                 UNION ALL SELECT tenant_id, status, priority, n FROM task_count_deltas)`;

/** Tasks finished per (tenant, minute), folded and not yet folded alike. */
const FINISHED = `(SELECT tenant_id, minute, completed, failed, cancelled, timed_out, run_ms, runs FROM task_finish_minutes
                   UNION ALL
                   SELECT tenant_id, minute,
                          CASE WHEN status = 'completed' THEN n ELSE 0 END, CASE WHEN status = 'failed' THEN n ELSE 0 END,
                          CASE WHEN status = 'cancelled' THEN n ELSE 0 END, CASE WHEN status = 'timed_out' THEN n ELSE 0 END,
                          run_ms, runs
                     FROM task_finish_deltas)`;

export interface CountRow {
  tenant_id: string;
  status: TaskState;
  priority: number;
  n: number;
}

export interface FinishedBucket {
  bucket: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

/** Counts that don't scan `tasks`: kept by triggers in the transaction of every change (docs/database.md). */
@Injectable()
export class TaskCountsRepository {
  constructor(private readonly db: DataSource) {}

  /** Every non-zero (tenant, state, priority) count the caller may see. */
  async all(): Promise<CountRow[]> {
    const rows: { tenant_id: string; status: TaskState; priority: number; n: string }[] = await this.db.query(
      `SELECT tenant_id, status, priority, sum(n) AS n FROM ${COUNTS} c GROUP BY 1, 2, 3 HAVING sum(n) <> 0`,
    );
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  /** How many tasks (of the caller's tenants) are in one of `states` (all states when absent). */
  async total(states?: readonly TaskState[]): Promise<number> {
    const [row]: { n: string | null }[] = await this.db.query(
      `SELECT sum(n) AS n FROM ${COUNTS} c WHERE $1::text[] IS NULL OR status = ANY($1::text[])`,
      [states?.length ? states : null],
    );
    return Number(row.n ?? 0);
  }

  /** A tenant's tasks in one of `states`. */
  async totalOf(tenantId: string, states: readonly TaskState[]): Promise<number> {
    const [row]: { n: string | null }[] = await this.db.query(
      `SELECT sum(n) AS n FROM ${COUNTS} c WHERE tenant_id = $1 AND status = ANY($2::text[])`,
      [tenantId, states],
    );
    return Number(row.n ?? 0);
  }

  /**
   * Pending tasks whose run_at has come (the queue of /health): the pending count less the
   * delayed ones, an index range of IDX_tasks_pending_run_at past now (the ready backlog itself
   * is never read, however long it is).
   */
  async ready(): Promise<number> {
    const [row]: { n: string | null }[] = await this.db.query(
      `SELECT (SELECT COALESCE(sum(n), 0) FROM ${COUNTS} c WHERE status = 'pending')
            - (SELECT count(*) FROM tasks WHERE status = 'pending' AND run_at > now()) AS n`,
    );
    return Math.max(0, Number(row.n ?? 0));
  }

  /** Tasks completed in the last `periodHours` and their mean start-to-completion time (ms). */
  async finishedSummary(periodHours: number): Promise<{ completedInPeriod: number; avgRunMs: number | null }> {
    const [row]: { completed: string | null; run_ms: string | null; runs: string | null }[] = await this.db.query(
      `SELECT sum(completed) AS completed, sum(run_ms) AS run_ms, sum(runs) AS runs
         FROM ${FINISHED} f
        WHERE minute >= date_trunc('minute', now() - make_interval(hours => $1))`,
      [periodHours],
    );
    const runs = Number(row.runs ?? 0);
    return {
      completedInPeriod: Number(row.completed ?? 0),
      avgRunMs: runs > 0 ? Number(row.run_ms) / runs : null,
    };
  }

  /** Tasks finished per bucket over the last `periodHours`, every bucket present. */
  async finishedSeries(periodHours: number, bucket: 'minute' | 'hour' | 'day'): Promise<FinishedBucket[]> {
    return this.db.query(
      `WITH buckets AS (
         SELECT generate_series(date_trunc($2, now() - make_interval(hours => $1)), date_trunc($2, now()),
                                ('1 ' || $2)::interval) AS bucket
       ), finished AS (
         SELECT date_trunc($2, minute) AS bucket, sum(completed) AS completed,
                sum(failed + timed_out) AS failed, sum(cancelled) AS cancelled
           FROM ${FINISHED} f
          WHERE minute >= date_trunc($2, now() - make_interval(hours => $1))
          GROUP BY 1
       )
       SELECT b.bucket, COALESCE(f.completed, 0)::int AS completed, COALESCE(f.failed, 0)::int AS failed,
              COALESCE(f.cancelled, 0)::int AS cancelled
         FROM buckets b LEFT JOIN finished f ON f.bucket = b.bucket
        ORDER BY b.bucket`,
      [periodHours, bucket],
    );
  }

  /**
   * What a node finished over its life (folded and not yet folded) and holds now (an index range
   * of IDX_tasks_node_held): never a read of the node's history.
   */
  async ofNode(nodeId: string): Promise<{ completed: number; failed: number; held: number }> {
    const [row]: { completed: string | null; failed: string | null; held: number }[] = await this.db.query(
      `SELECT sum(completed) AS completed, sum(failed) AS failed,
              (SELECT count(*)::int FROM tasks WHERE node_id = $1 AND status IN ('dispatched', 'running')) AS held
         FROM (SELECT completed, failed + timed_out AS failed FROM task_node_finishes WHERE node_id = $1
               UNION ALL
               SELECT CASE WHEN status = 'completed' THEN n ELSE 0 END,
                      CASE WHEN status IN ('failed', 'timed_out') THEN n ELSE 0 END
                 FROM task_finish_deltas WHERE node_id = $1) f`,
      [nodeId],
    );
    return { completed: Number(row.completed ?? 0), failed: Number(row.failed ?? 0), held: row.held };
  }

  /** Moves the deltas into the counts (one hub at a time; 0 when another hub is folding). */
  async fold(): Promise<number> {
    const [row]: { n: string }[] = await this.db.query(`SELECT taskhub_fold_task_counts() AS n`);
    return Number(row.n);
  }

  /** Drops per-minute finish counts older than `days` (the statistics' longest period). */
  async dropFinishedBefore(days: number): Promise<number> {
    const rows: unknown[] = await this.db.query(
      `DELETE FROM task_finish_minutes WHERE minute < now() - make_interval(days => $1) RETURNING 1`,
      [days],
    );
    return rows.length;
  }
}

/** What the statistics surfaces show: counts by state and priority, and tasks finished per bucket. */
export interface StatisticsRows {
  counts: {
    total: number;
    pending: number;
    dispatched: number;
    running: number;
    completed: number;
    failed: number;
    cancelled: number;
    timed_out: number;
    p_low: number;
    p_medium: number;
    p_high: number;
    p_urgent: number;
    avg_processing_ms: string | number | null;
    completed_in_period: number;
  };
  series: FinishedBucket[];
}
