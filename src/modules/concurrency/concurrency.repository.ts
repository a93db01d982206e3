import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RATE_WINDOW_MS, tenantKey } from './concurrency-window.js';

/** A limit row with its live counts. */
export interface LimitRow {
  key: string;
  max_running: number | null;
  max_per_minute: number | null;
  running: number;
  started_last_minute: number;
  created_at: Date;
  updated_at: Date;
}

const WINDOW = `make_interval(secs => ${RATE_WINDOW_MS / 1000})`;
const NO_LIMIT = 2147483647;

/**
 * The live counts of the key of limit row `l` (its tenant's tasks only): `running` (dispatched
 * or running now, IDX_tasks_concurrency_unfinished), `started` and `oldest_start` (tasks whose last
 * start is inside the rolling window, IDX_tasks_concurrency_starts). Every read is an index range of
 * that key's live tasks or recent starts, never its history.
 */
export const keyCounts = (l: string): string =>
  `CROSS JOIN LATERAL (
     SELECT count(*)::int AS running FROM tasks x
     WHERE x.tenant_id = ${l}.tenant_id AND x.concurrency_key = ${l}.key AND x.status IN ('dispatched', 'running')
   ) kr CROSS JOIN LATERAL (
     SELECT count(*)::int AS started, min(x.dispatched_at) AS oldest_start FROM tasks x
     WHERE x.tenant_id = ${l}.tenant_id AND x.concurrency_key = ${l}.key AND x.dispatched_at IS NOT NULL
       AND x.dispatched_at > now() - ${WINDOW}
   ) ks`;

/** How many more tasks of limit row `l`'s key may start now (after keyCounts(l)); ≤ 0 when held. */
export const keyRoom = (l: string): string =>
  `LEAST(COALESCE(${l}.max_running - kr.running, ${NO_LIMIT}), COALESCE(${l}.max_per_minute - ks.started, ${NO_LIMIT}))`;

/**
 * CTE `key_limits` (tenant_id, key, room, opens_in_ms): the limited keys that have waiting work, with
 * the room each has now and, for one held by its rolling window, in how long its oldest start
 * leaves it (the dispatcher arms a timer; relative, so the hub's clock need not agree with the database's). A deployment without limit rows reads an empty table;
 * keys without a limit row are not in it.
 */
export const KEY_LIMITS = `key_limits AS MATERIALIZED (
         SELECT l.tenant_id, l.key, ${keyRoom('l')} AS room,
                CASE WHEN l.max_per_minute IS NOT NULL AND ks.started >= l.max_per_minute
                     THEN ceil(extract(epoch FROM ks.oldest_start + ${WINDOW} - now()) * 1000)::int END AS opens_in_ms
         FROM concurrency_limits l ${keyCounts('l')}
         WHERE EXISTS (SELECT 1 FROM tasks x WHERE x.tenant_id = l.tenant_id AND x.concurrency_key = l.key AND x.status = 'pending')
       )`;

/**
 * A condition on task `t`, after a CTE `held_keys` (tenant_id, key): it has no key (tested first,
 * so a task without one costs no lookup), or its key is not held.
 */
export const notHeld = (t: string): string =>
  `(${t}.concurrency_key IS NULL OR NOT EXISTS (
     SELECT 1 FROM held_keys hk WHERE hk.tenant_id = ${t}.tenant_id AND hk.key = ${t}.concurrency_key))`;

/**
 * Limits per key (docs/flow-control.md), one row per (tenant, key) under row-level security:
 * every statement here sees only the caller's tenant.
 */
@Injectable()
export class ConcurrencyRepository {
  constructor(private readonly db: DataSource) {}

  /** Sets both limits (null = none) of the caller's tenant's key; answers the row with its counts. */
  async upsert(key: string, maxRunning: number | null, maxPerMinute: number | null): Promise<LimitRow> {
    const rows: LimitRow[] = await this.db.query(
      `WITH up AS (
         INSERT INTO concurrency_limits (key, max_running, max_per_minute) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, key) DO UPDATE SET max_running = EXCLUDED.max_running,
           max_per_minute = EXCLUDED.max_per_minute, updated_at = now()
         RETURNING *
       )
       SELECT l.key, l.max_running, l.max_per_minute, kr.running, ks.started AS started_last_minute, l.created_at, l.updated_at
       FROM up l ${keyCounts('l')}`,
      [key, maxRunning, maxPerMinute],
    );
    return rows[0];
  }

  async find(key: string): Promise<LimitRow | undefined> {
    const rows: LimitRow[] = await this.db.query(
      `SELECT l.key, l.max_running, l.max_per_minute, kr.running, ks.started AS started_last_minute, l.created_at, l.updated_at
       FROM concurrency_limits l ${keyCounts('l')} WHERE l.key = $1`,
      [key],
    );
    return rows[0];
  }

  /** A page of the caller's limits, by key, after `after`. */
  async list(limit: number, after: string | null): Promise<LimitRow[]> {
    return this.db.query(
      `SELECT l.key, l.max_running, l.max_per_minute, kr.running, ks.started AS started_last_minute, l.created_at, l.updated_at
       FROM (SELECT * FROM concurrency_limits WHERE $2::text IS NULL OR key > $2 ORDER BY key LIMIT $1) l ${keyCounts('l')}
       ORDER BY l.key`,
      [limit, after],
    );
  }

  async remove(key: string): Promise<LimitRow | undefined> {
    const rows: LimitRow[] = await this.db.query(
      `WITH d AS (DELETE FROM concurrency_limits WHERE key = $1 RETURNING *)
       SELECT l.key, l.max_running, l.max_per_minute, kr.running, ks.started AS started_last_minute, l.created_at, l.updated_at
       FROM d l ${keyCounts('l')}`,
      [key],
    );
    return rows[0];
  }

  /** Of these (tenant, key) pairs, those held now (at a limit), as tenantKey strings. For task views' `waiting_on`. */
  async heldKeys(keys: { tenant_id: string; key: string }[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows: { tenant_id: string; key: string }[] = await this.db.query(
      `SELECT l.tenant_id, l.key FROM concurrency_limits l ${keyCounts('l')}
       WHERE (l.tenant_id, l.key) IN (SELECT * FROM jsonb_to_recordset($1::jsonb) AS k(tenant_id text, key text))
         AND ${keyRoom('l')} <= 0`,
      [JSON.stringify(keys)],
    );
    return new Set(rows.map((r) => tenantKey(r.tenant_id, r.key)));
  }
}
