import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { HeartbeatReport, HeldTask, NodeKind, NodeRegistration, NodeRow, NodeStatus } from './node.types.js';
import type { ToolDefinition } from '../tools/tool-definition.js';
import { HELD_STATES, sqlStates } from '../tasks/task-state.js';

/** The states in which a task holds a slot on its node (from the tasks state machine). */
const HELD = sqlStates(HELD_STATES);

/** Nodes with their live load (held tasks), computed from tasks so it can never drift. */
const SELECT_NODES = `
  SELECT n.*, COALESCE(l.running, 0)::int AS running
  FROM nodes n
  LEFT JOIN (SELECT node_id, count(*) AS running FROM tasks
             WHERE status IN (${HELD}) AND node_id IS NOT NULL GROUP BY node_id) l
    ON l.node_id = n.id`;

const STATUS_SQL: Record<NodeStatus, string> = {
  offline: `n.status = 'offline'`,
  draining: `n.status = 'online' AND n.draining`,
  busy: `n.status = 'online' AND NOT n.draining AND COALESCE(l.running, 0) >= n.capacity`,
  online: `n.status = 'online' AND NOT n.draining AND COALESCE(l.running, 0) < n.capacity`,
};

/** A node and the tools it offers (as normalizeTools stored them). */
export interface ToolOffer {
  node_id: string;
  name: string | null;
  tenant_id: string;
  tools: ToolDefinition[];
}

export interface NodeListFilter {
  status?: NodeStatus;
  tag?: string;
  kind?: NodeKind;
  limit: number;
  offset: number;
}

@Injectable()
export class NodesRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Insert or take over the row for this id in one statement: a re-registration replaces
   * the socket, never duplicates the node. Also answers the socket it replaced and the tasks
   * the node still holds (a reconnect within the grace keeps them). Node ids are hub-wide: an
   * id another tenant holds is not taken over (undefined: nothing changed); the system (`*`, a
   * global admin acting for every tenant) may take over any, and the row keeps its tenant.
   */
  async register(
    r: NodeRegistration,
  ): Promise<{ node: NodeRow; previousSocketId: string | null; held: HeldTask[] } | undefined> {
    const rows: (NodeRow & { prev_socket: string | null; held: HeldTask[] })[] = await this.db
      .query(
        // prev reads the row as it was before this statement (one snapshot for the whole WITH).
        `WITH prev AS (SELECT socket_id FROM nodes WHERE id = $1),
       up AS (
         INSERT INTO nodes (id, name, kind, vocabulary, status, capacity, tags, capabilities, info, version,
                            instance_id, socket_id, connected_at, last_heartbeat_at, disconnected_at, updated_at, acks, shared)
         VALUES ($1, $2, $3, $4, 'online', $5, $6, $7, $8, $9, $10, $11, now(), now(), NULL, now(), COALESCE($12, false), $13)
         ON CONFLICT (id) DO UPDATE SET
           name = EXCLUDED.name, kind = EXCLUDED.kind, vocabulary = EXCLUDED.vocabulary, status = 'online',
           capacity = EXCLUDED.capacity, tags = EXCLUDED.tags, capabilities = EXCLUDED.capabilities,
           info = EXCLUDED.info, version = EXCLUDED.version, instance_id = EXCLUDED.instance_id,
           socket_id = EXCLUDED.socket_id, connected_at = now(), last_heartbeat_at = now(),
           disconnected_at = NULL, updated_at = now(), acks = COALESCE($12, nodes.acks), shared = EXCLUDED.shared
         WHERE nodes.tenant_id = EXCLUDED.tenant_id OR taskhub_current_tenant() = '*'
         RETURNING *
       ), held AS (
         SELECT id, attempt, status FROM tasks WHERE node_id = $1 AND status IN (${HELD}) ORDER BY dispatched_at
       )
       SELECT up.*, (SELECT count(*)::int FROM held) AS running, (SELECT socket_id FROM prev) AS prev_socket,
              COALESCE((SELECT json_agg(json_build_object('task_id', id, 'attempt', attempt, 'status', status)) FROM held), '[]'::json) AS held
       FROM up`,
        [
          r.id,
          r.name,
          r.kind,
          r.vocabulary,
          r.capacity,
          r.tags,
          r.capabilities,
          JSON.stringify(r.info),
          r.version,
          r.instanceId,
          r.socketId,
          r.acks ?? null,
          r.shared === true,
        ],
      )
      // PostgreSQL 15 checks the UPDATE policy on the conflicting row before the DO UPDATE WHERE
      // (18 skips it): another tenant's row is then an RLS error (42501), i.e. the same "taken".
      .catch((e: { driverError?: { code?: string } }) => {
        if (e.driverError?.code === '42501') return [];
        throw e;
      });
    if (rows.length === 0) return undefined;
    const { prev_socket, held, ...node } = rows[0];
    return { node: node as NodeRow, previousSocketId: prev_socket, held };
  }

  /**
   * Marks the node offline only if this socket still owns it (a replaced socket's disconnect
   * changes nothing); answers the tasks it still holds, or undefined when nothing changed.
   */
  async markDisconnected(id: string, socketId: string): Promise<{ held: number; tenant_id: string } | undefined> {
    const rows: { held: number; tenant_id: string }[] = await this.db.query(
      `WITH u AS (UPDATE nodes SET status = 'offline', disconnected_at = now(), updated_at = now()
                  WHERE id = $1 AND socket_id = $2 AND status = 'online' RETURNING id, tenant_id)
       SELECT (SELECT count(*)::int FROM tasks WHERE node_id = u.id AND status IN (${HELD})) AS held, u.tenant_id FROM u`,
      [id, socketId],
    );
    return rows[0];
  }

  /** One statement for every heartbeat since the last flush; what a heartbeat did not report stays as it was. */
  async touchHeartbeats(beats: { id: string; report: HeartbeatReport | null }[]): Promise<void> {
    if (beats.length === 0) return;
    const items = beats.map((b) => ({
      id: b.id,
      status: b.report?.status ?? null,
      resources: b.report?.resources ?? null,
      stats: b.report?.stats ?? null,
    }));
    await this.db.query(
      `UPDATE nodes n SET last_heartbeat_at = now(),
              reported_status = COALESCE(x.status, n.reported_status),
              resources = COALESCE(x.resources, n.resources),
              stats = COALESCE(x.stats, n.stats)
       FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, resources jsonb, stats jsonb)
       WHERE n.id = x.id AND n.status = 'online'`,
      [JSON.stringify(items)],
    );
  }

  async setDraining(id: string, draining: boolean): Promise<NodeRow | undefined> {
    await this.db.query(`UPDATE nodes SET draining = $2, updated_at = now() WHERE id = $1`, [id, draining]);
    return this.findById(id);
  }

  async findById(id: string): Promise<NodeRow | undefined> {
    const rows: NodeRow[] = await this.db.query(`${SELECT_NODES} WHERE n.id = $1`, [id]);
    return rows[0];
  }

  async list(f: NodeListFilter): Promise<{ rows: NodeRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status) where.push(STATUS_SQL[f.status]);
    if (f.tag) {
      params.push(f.tag);
      where.push(`n.tags @> ARRAY[$${params.length}::text]`);
    }
    if (f.kind) {
      params.push(f.kind);
      where.push(`n.kind = $${params.length}`);
    }
    const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows: (NodeRow & { total_count: string })[] = await this.db.query(
      `SELECT *, count(*) OVER() AS total_count FROM (${SELECT_NODES} ${whereSql}) x
       ORDER BY registered_at, id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, f.limit, f.offset],
    );
    if (rows.length > 0 || f.offset === 0) return { rows, total: rows.length ? Number(rows[0].total_count) : 0 };
    const count: { n: string }[] = await this.db.query(
      `SELECT count(*) AS n FROM (${SELECT_NODES} ${whereSql}) x`,
      params,
    );
    return { rows, total: Number(count[0].n) };
  }

  /** The tools connected nodes (not draining) of the caller's tenant declared at registration. */
  async toolOffers(): Promise<ToolOffer[]> {
    return this.db.query(
      `SELECT id AS node_id, name, tenant_id, info->'tools' AS tools FROM nodes
       WHERE status = 'online' AND NOT draining AND info ? 'tools' ORDER BY id`,
    );
  }

  async countConnected(): Promise<number> {
    const rows: { n: number }[] = await this.db.query(`SELECT count(*)::int AS n FROM nodes WHERE status = 'online'`);
    return rows[0].n;
  }

  /** Nodes online now, and all registered. */
  async countOnline(): Promise<{ online: number; total: number }> {
    const rows: { online: number; total: number }[] = await this.db.query(
      `SELECT count(*) FILTER (WHERE status = 'online')::int AS online, count(*)::int AS total FROM nodes`,
    );
    return rows[0];
  }

  /** countOnline per tenant (callers run as the system: the Prometheus gauges). */
  async countOnlineByTenant(): Promise<{ tenant_id: string; online: number; total: number }[]> {
    return this.db.query(
      `SELECT tenant_id, count(*) FILTER (WHERE status = 'online')::int AS online, count(*)::int AS total
       FROM nodes GROUP BY tenant_id`,
    );
  }

  async delete(id: string): Promise<boolean> {
    const rows: { id: string }[] = await this.db.query(
      `WITH d AS (DELETE FROM nodes WHERE id = $1 RETURNING id) SELECT id FROM d`,
      [id],
    );
    return rows.length > 0;
  }
}
