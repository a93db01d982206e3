import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** One (tenant, priority) queue: its pending tasks and how long the oldest ready one has waited. */
export interface QueueGaugeRow {
  tenant_id: string;
  priority: number;
  /** Pending tasks, delayed ones included (the folded counts: no scan of `tasks`). */
  depth: number;
  /** Seconds since the oldest ready task of the queue became ready (run_at); 0 when none is ready yet. */
  oldest_age_seconds: number;
}

/**
 * How many of the oldest pending rows of a queue (in id order, which is creation order: ids are
 * UUIDv7, task-id.ts) the age lookup reads. Bounded so a scrape costs the same with 10 or 1M
 * pending rows; a queue whose first rows are all delayed (run_at in the future) reads 0.
 */
export const QUEUE_AGE_WINDOW = 64;

/**
 * The Prometheus queue gauges, read at scrape time. Which queues exist comes from the folded
 * task counts (task_counts + deltas, kept by triggers: migration 1765700000000), not from
 * `tasks`; each non-empty queue then costs one short range of IDX_tasks_list_priority
 * (tenant_id, status, priority, id) from its start: at most QUEUE_AGE_WINDOW entries, however
 * long the backlog. EXPLAIN on 200k pending rows: docs/observability.md, "Metrics".
 * Row-level security applies as to any read: the metrics service calls it as the system.
 */
@Injectable()
export class TaskQueueGaugesRepository {
  constructor(private readonly db: DataSource) {}

  async pendingQueues(): Promise<QueueGaugeRow[]> {
    const rows: { tenant_id: string; priority: number; depth: string; oldest_age_seconds: number | null }[] =
      await this.db.query(
        `SELECT q.tenant_id, q.priority, q.depth, COALESCE(a.age, 0) AS oldest_age_seconds
           FROM (SELECT c.tenant_id, c.priority, sum(c.n) AS depth
                   FROM (SELECT tenant_id, status, priority, n FROM task_counts
                         UNION ALL SELECT tenant_id, status, priority, n FROM task_count_deltas) c
                  WHERE c.status = 'pending'
                  GROUP BY 1, 2
                 HAVING sum(c.n) > 0) q
           CROSS JOIN LATERAL (
             SELECT extract(epoch FROM now() - min(w.run_at))::float8 AS age
               FROM (SELECT t.run_at FROM tasks t
                      WHERE t.tenant_id = q.tenant_id AND t.status = 'pending' AND t.priority = q.priority
                      ORDER BY t.id
                      LIMIT $1) w
              WHERE w.run_at <= now()
           ) a
          ORDER BY 1, 2`,
        [QUEUE_AGE_WINDOW],
      );
    return rows.map((r) => ({
      tenant_id: r.tenant_id,
      priority: Number(r.priority),
      depth: Number(r.depth),
      oldest_age_seconds: Math.max(0, Number(r.oldest_age_seconds ?? 0)),
    }));
  }
}
