import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface InstanceRecord {
  id: string;
  name: string;
  host: string;
  pid: number;
}

/**
 * `hub_instances`: one row per running hub process, refreshed every few seconds. A node is
 * only as alive as the process holding its socket: nodes of a vanished process are offline.
 */
@Injectable()
export class HubInstancesRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Records this process and removes the rows of processes known to be dead: earlier
   * incarnations with the same name, or every other one when `alone` (no other hub can be
   * running). Answers the removed ids.
   */
  async register(self: InstanceRecord, alone: boolean): Promise<string[]> {
    return this.db.transaction(async (m) => {
      const removed: { id: string }[] = await m.query(
        `WITH d AS (DELETE FROM hub_instances WHERE id <> $1 AND (name = $2 OR $3) RETURNING id) SELECT id FROM d`,
        [self.id, self.name, alone],
      );
      await this.upsert(self, (sql, params) => m.query(sql, params));
      return removed.map((r) => r.id);
    });
  }

  /**
   * Refreshes this process's row. `existed` is false when it was missing (another hub thought
   * it dead); `at` is the database's clock at the refresh, the bound for `reconcileOwn`.
   */
  async refresh(self: InstanceRecord): Promise<{ existed: boolean; at: Date }> {
    const rows = await this.upsert(self, (sql, params) => this.db.query(sql, params));
    return { existed: !rows[0].fresh, at: rows[0].at };
  }

  private upsert(
    self: InstanceRecord,
    query: (sql: string, params: unknown[]) => Promise<{ fresh: boolean; at: Date }[]>,
  ): Promise<{ fresh: boolean; at: Date }[]> {
    // xmax = 0 on the returned row: it was inserted, not updated.
    return query(
      `INSERT INTO hub_instances (id, name, host, pid) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
       RETURNING (xmax = 0) AS fresh, now() AS at`,
      [self.id, self.name, self.host, self.pid],
    );
  }

  /**
   * Deletes the rows of processes silent past `staleMs` (SKIP LOCKED: any number of hubs can
   * sweep at once) and sets offline every online node not held by a live process; their
   * reconnect grace starts now. Answers those nodes.
   */
  async sweep(selfId: string, staleMs: number): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `WITH dead AS (
         DELETE FROM hub_instances WHERE id IN (
           SELECT id FROM hub_instances WHERE id <> $1 AND last_seen_at < now() - make_interval(secs => $2)
           FOR UPDATE SKIP LOCKED)
         RETURNING id
       ), n AS (
         UPDATE nodes SET status = 'offline', disconnected_at = now(), updated_at = now()
         WHERE status = 'online'
           AND (instance_id IS NULL
                OR instance_id IN (SELECT id FROM dead)
                OR NOT EXISTS (SELECT 1 FROM hub_instances h WHERE h.id = nodes.instance_id))
         RETURNING id
       )
       SELECT id FROM n`,
      [selfId, staleMs / 1000],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Online nodes registered through this process before `listedAfter` whose connection is no
   * longer here: offline now. A node registered later may hold a connection opened after the
   * list was taken, so it is left alone (its connection was opened before it registered, so
   * one registered earlier and still connected is always in the list).
   */
  async reconcileOwn(selfId: string, liveConnections: string[], listedAfter: Date): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `WITH u AS (
         UPDATE nodes SET status = 'offline', disconnected_at = now(), updated_at = now()
         WHERE instance_id = $1 AND status = 'online' AND connected_at < $3
           AND (socket_id IS NULL OR socket_id NOT IN (SELECT unnest($2::text[])))
         RETURNING id
       ) SELECT id FROM u`,
      [selfId, liveConnections, listedAfter],
    );
    return rows.map((r) => r.id);
  }

  /** After this process was wrongly swept: its nodes whose connections are still here are online again. */
  async restoreOwn(selfId: string, liveConnections: string[]): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `WITH u AS (
         UPDATE nodes SET status = 'online', disconnected_at = NULL, updated_at = now()
         WHERE instance_id = $1 AND status = 'offline' AND socket_id IN (SELECT unnest($2::text[]))
         RETURNING id
       ) SELECT id FROM u`,
      [selfId, liveConnections],
    );
    return rows.map((r) => r.id);
  }

  /** A clean stop: this process's nodes are offline from now (their grace starts) and its row goes. */
  async release(selfId: string): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(
        `UPDATE nodes SET status = 'offline', disconnected_at = now(), updated_at = now() WHERE instance_id = $1 AND status = 'online'`,
        [selfId],
      );
      await m.query(`DELETE FROM hub_instances WHERE id = $1`, [selfId]);
    });
  }
}
