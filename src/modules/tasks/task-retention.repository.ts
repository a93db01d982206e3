import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { sqlStates, TERMINAL_STATES } from './task-state.js';

/** When a finished task finished: the key of IDX_tasks_finished (migration 1765800000000). */
const FINISHED = `COALESCE(GREATEST(completed_at, cancelled_at), created_at)`;
const TERMINAL = sqlStates(TERMINAL_STATES);

/** The newest finished task a count bound removes, as the index orders them (time as text: microseconds kept). */
export interface FinishedEdge {
  finished: string;
  id: string;
}

export interface FinishedBatch {
  /** Finished tasks of this tenant only. */
  tenantId: string;
  /** Only tasks finished longer ago than this (the age bound, never below the grace). */
  olderThanSeconds: number;
  /** With a count bound: only tasks at or before this edge. */
  edge?: FinishedEdge;
  /** Tasks that awaited a plugin are kept at least this long (the plugin's retries of a delivery find them). */
  awaitedSeconds: number;
  /** Tasks requests of this process are waiting on. */
  waited: string[];
  limit: number;
}

/** All SQL of task retention (docs/retention.md): finished tasks and their events, events past a task's cap. */
@Injectable()
export class TaskRetentionRepository {
  constructor(private readonly db: DataSource) {}

  /** The (keep+1)-th newest finished task of a tenant: it and everything older is past a count bound of `keep`. */
  async countEdge(tenantId: string, keep: number): Promise<FinishedEdge | undefined> {
    const rows: FinishedEdge[] = await this.db.query(
      `SELECT ${FINISHED}::text AS finished, id FROM tasks
       WHERE tenant_id = $1 AND status IN (${TERMINAL})
       ORDER BY ${FINISHED} DESC, id DESC OFFSET $2 LIMIT 1`,
      [tenantId, keep],
    );
    return rows[0];
  }

  /**
   * Removes up to `limit` finished tasks past the bound, oldest first, and their events, in one
   * statement: the rows are picked by the finished index with FOR UPDATE SKIP LOCKED (a task a
   * reply, retry or late report is touching right now is left for the next pass; nothing else
   * locks finished tasks), their events deleted first (so the ON DELETE CASCADE finds none),
   * then the tasks.
   */
  async deleteFinished(b: FinishedBatch): Promise<{ tasks: number; events: number }> {
    const rows: { tasks: number; events: number }[] = await this.db.query(
      `WITH picked AS (
         SELECT id FROM tasks
         WHERE tenant_id = $1 AND status IN (${TERMINAL})
           AND ${FINISHED} < now() - make_interval(secs => $2)
           AND ($3::timestamptz IS NULL OR (${FINISHED}, id) <= ($3::timestamptz, $4::uuid))
           AND (awaits_callback IS NULL OR ${FINISHED} < now() - make_interval(secs => $5))
           AND id <> ALL($6::uuid[])
         ORDER BY ${FINISHED}, id
         LIMIT $7
         FOR UPDATE SKIP LOCKED
       ), ev AS (
         DELETE FROM task_events e USING picked p WHERE e.task_id = p.id RETURNING 1
       ), d AS (
         DELETE FROM tasks t USING picked p WHERE t.id = p.id RETURNING 1
       )
       SELECT (SELECT count(*) FROM d)::int AS tasks, (SELECT count(*) FROM ev)::int AS events`,
      [
        b.tenantId,
        b.olderThanSeconds,
        b.edge?.finished ?? null,
        b.edge?.id ?? null,
        b.awaitedSeconds,
        b.waited,
        b.limit,
      ],
    );
    return rows[0];
  }

  /** The newest event id (0: none). */
  async lastEventId(): Promise<number> {
    const rows: { id: string }[] = await this.db.query(`SELECT COALESCE(max(id), 0)::text AS id FROM task_events`);
    return Number(rows[0].id);
  }

  /**
   * The tasks among those with events after `since` (the next `chunk` events by id) that have
   * more than `cap` events, each with the id of its newest event past the cap; `upto` is the
   * last event id looked at, `seen` how many were. One index probe per task with new events.
   */
  async tasksOverCap(
    since: number,
    chunk: number,
    cap: number,
  ): Promise<{ upto: number; seen: number; over: { task_id: string; edge: string }[] }> {
    const rows: { upto: string | null; seen: number; over: { task_id: string; edge: string }[] }[] =
      await this.db.query(
        `WITH recent AS (
           SELECT id, task_id FROM task_events WHERE id > $1 ORDER BY id LIMIT $2
         ), touched AS (
           SELECT DISTINCT task_id FROM recent
         )
         SELECT (SELECT max(id) FROM recent)::text AS upto, (SELECT count(*) FROM recent)::int AS seen,
                COALESCE((SELECT json_agg(json_build_object('task_id', t.task_id, 'edge', x.id::text))
                          FROM touched t CROSS JOIN LATERAL (
                            SELECT id FROM task_events e WHERE e.task_id = t.task_id ORDER BY id DESC OFFSET $3 LIMIT 1
                          ) x), '[]'::json) AS over`,
        [since, chunk, cap],
      );
    const r = rows[0];
    return { upto: r.upto === null ? since : Number(r.upto), seen: r.seen, over: r.over };
  }

  /** Removes up to `limit` of a task's events at or before `edge`, oldest first. */
  async trimEvents(taskId: string, edge: string, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM task_events WHERE id IN (
           SELECT id FROM task_events WHERE task_id = $1 AND id <= $2::bigint ORDER BY id LIMIT $3)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [taskId, edge, limit],
    );
    return rows[0].n;
  }
}
