import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { HealthCheckRow, HealthResult, ServiceInput, ServiceRow, ServiceStatus } from './agent-service.types.js';

const INSERT_COLUMNS = [
  'name',
  'description',
  'kind',
  'agent_factory_path',
  'command',
  'args',
  'cwd',
  'env',
  'host',
  'port',
  'endpoint',
  'health_check',
  'tags',
  'config',
  'weight',
  'status',
  'desired_state',
] as const;
const JSON_COLUMNS = new Set<string>(['env', 'health_check', 'config']);

/** The name is taken by another service. */
export const DUPLICATE_NAME = Symbol('duplicate-name');

export interface ServiceFilter {
  tag?: string;
  status?: ServiceStatus;
  limit: number;
  offset: number;
}

/** Fields a status transition may set along with the status. */
export type TransitionFields = Partial<
  Pick<ServiceRow, 'pid' | 'runtime_port' | 'owner_instance' | 'desired_state' | 'last_exit_code' | 'last_error'>
> & { started?: boolean; stopped?: boolean; count_restart?: boolean };

@Injectable()
export class AgentServicesRepository {
  constructor(private readonly db: DataSource) {}

  async insert(s: ServiceInput): Promise<ServiceRow | typeof DUPLICATE_NAME> {
    const rows: ServiceRow[] = await this.db.query(
      `WITH i AS (
         INSERT INTO agent_services (${INSERT_COLUMNS.join(', ')})
         VALUES (${INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *)
       SELECT * FROM i`,
      INSERT_COLUMNS.map((c) => (JSON_COLUMNS.has(c) ? JSON.stringify(s[c]) : s[c])),
    );
    return rows[0] ?? DUPLICATE_NAME;
  }

  async findById(id: string): Promise<ServiceRow | undefined> {
    const rows: ServiceRow[] = await this.db.query(`SELECT * FROM agent_services WHERE id = $1`, [id]);
    return rows[0];
  }

  async findByName(name: string): Promise<ServiceRow | undefined> {
    const rows: ServiceRow[] = await this.db.query(`SELECT * FROM agent_services WHERE name = $1`, [name]);
    return rows[0];
  }

  async list(f: ServiceFilter): Promise<{ rows: ServiceRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.tag !== undefined) where.push(`tags @> ARRAY[$${params.push(f.tag)}]::text[]`);
    if (f.status !== undefined) where.push(`status = $${params.push(f.status)}`);
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows: (ServiceRow & { total: string })[] = await this.db.query(
      `SELECT *, count(*) OVER () AS total FROM agent_services ${clause}
       ORDER BY created_at, id LIMIT $${params.push(f.limit)} OFFSET $${params.push(f.offset)}`,
      params,
    );
    if (rows.length === 0 && f.offset > 0) {
      const [{ n }] = (await this.db.query(
        `SELECT count(*)::int AS n FROM agent_services ${clause}`,
        params.slice(0, -2),
      )) as { n: number }[];
      return { rows: [], total: n };
    }
    return {
      rows: rows.map(({ total: _total, ...r }) => r as ServiceRow),
      total: rows.length ? Number(rows[0].total) : 0,
    };
  }

  /** Every service (the proxy's candidate set; a registry holds tens, not millions). */
  async all(): Promise<ServiceRow[]> {
    return this.db.query(`SELECT * FROM agent_services ORDER BY created_at, id`);
  }

  /** Ids of the services the caller's tenant sees (row-level security scopes it). */
  async ids(): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(`SELECT id FROM agent_services`);
    return rows.map((r) => r.id);
  }

  /**
   * Compare-and-set on status: moves the service from one of `from` to `to` and sets the
   * fields given. Undefined when the service is gone or in another status (a lost race).
   */
  async transition(
    id: string,
    from: readonly ServiceStatus[],
    to: ServiceStatus,
    fields: TransitionFields = {},
  ): Promise<ServiceRow | undefined> {
    const sets = ['status = $3', 'updated_at = now()'];
    const params: unknown[] = [id, from, to];
    for (const key of [
      'pid',
      'runtime_port',
      'owner_instance',
      'desired_state',
      'last_exit_code',
      'last_error',
    ] as const) {
      if (fields[key] !== undefined) sets.push(`${key} = $${params.push(fields[key])}`);
    }
    if (fields.owner_instance !== undefined) sets.push('owner_seen_at = now()');
    if (fields.started) sets.push('started_at = now()');
    if (fields.count_restart) sets.push('restart_count = restart_count + 1');
    if (fields.stopped) sets.push('stopped_at = now()', 'pid = NULL', `health_status = 'unknown'`);
    const rows: ServiceRow[] = await this.db.query(
      `WITH u AS (UPDATE agent_services SET ${sets.join(', ')} WHERE id = $1 AND status = ANY($2) RETURNING *) SELECT * FROM u`,
      params,
    );
    return rows[0];
  }

  async updateConfig(
    id: string,
    config: ServiceRow['config'],
    extra: { weight?: number; tags?: string[]; description?: string | null; health_check?: ServiceRow['health_check'] },
  ): Promise<ServiceRow | undefined> {
    const sets = ['config = $2', 'updated_at = now()'];
    const params: unknown[] = [id, JSON.stringify(config)];
    if (extra.weight !== undefined) sets.push(`weight = $${params.push(extra.weight)}`);
    if (extra.tags !== undefined) sets.push(`tags = $${params.push(extra.tags)}`);
    if (extra.description !== undefined) sets.push(`description = $${params.push(extra.description)}`);
    if (extra.health_check !== undefined)
      sets.push(`health_check = $${params.push(JSON.stringify(extra.health_check))}`);
    const rows: ServiceRow[] = await this.db.query(
      `WITH u AS (UPDATE agent_services SET ${sets.join(', ')} WHERE id = $1 RETURNING *) SELECT * FROM u`,
      params,
    );
    return rows[0];
  }

  async delete(id: string): Promise<ServiceRow | undefined> {
    const rows: ServiceRow[] = await this.db.query(
      `WITH d AS (DELETE FROM agent_services WHERE id = $1 RETURNING *) SELECT * FROM d`,
      [id],
    );
    return rows[0];
  }

  /** Records one check and the service's current health in one transaction. */
  async recordHealth(id: string, r: HealthResult): Promise<ServiceRow | undefined> {
    return this.db.transaction(async (m) => {
      const rows: ServiceRow[] = await m.query(
        `WITH u AS (
           UPDATE agent_services SET health_status = $2, health_response_ms = $3, health_message = $4, health_checked_at = now()
           WHERE id = $1 RETURNING *)
         SELECT * FROM u`,
        [id, r.status, r.response_time_ms, r.message],
      );
      if (rows[0]) {
        await m.query(
          `INSERT INTO service_health_checks (service_id, status, response_time_ms, message) VALUES ($1, $2, $3, $4)`,
          [id, r.status, r.response_time_ms, r.message],
        );
      }
      return rows[0];
    });
  }

  async healthHistory(id: string, limit: number): Promise<HealthCheckRow[]> {
    return this.db.query(
      `SELECT id::text, service_id, status, response_time_ms, message, checked_at
       FROM service_health_checks WHERE service_id = $1 ORDER BY checked_at DESC, id DESC LIMIT $2`,
      [id, limit],
    );
  }

  /** Removes up to `limit` of a service's checks older than its newest `keep`, oldest first. */
  async pruneHealthHistory(serviceId: string, keep: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH edge AS (
         SELECT checked_at, id FROM service_health_checks WHERE service_id = $1
         ORDER BY checked_at DESC, id DESC OFFSET $2 LIMIT 1
       ), d AS (
         DELETE FROM service_health_checks WHERE id IN (
           SELECT h.id FROM service_health_checks h, edge
           WHERE h.service_id = $1 AND (h.checked_at, h.id) <= (edge.checked_at, edge.id)
           ORDER BY h.checked_at LIMIT $3)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [serviceId, keep, limit],
    );
    return rows[0].n;
  }

  /** Marks this instance alive as the owner of the managed services it runs. */
  async touchOwner(ids: string[], instance: string): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(`UPDATE agent_services SET owner_seen_at = now() WHERE id = ANY($1) AND owner_instance = $2`, [
      ids,
      instance,
    ]);
  }

  /**
   * Managed services meant to run whose owner is nobody or an instance silent for `staleMs`:
   * claimed for this instance (compare-and-set under row locks). `orphan_pid` is the process
   * the previous owner recorded, which may still be running if that hub was killed.
   */
  async claimOrphans(instance: string, staleMs: number): Promise<(ServiceRow & { orphan_pid: number | null })[]> {
    return this.db.query(
      `WITH o AS (
         SELECT id, pid FROM agent_services
         WHERE kind = 'managed' AND desired_state = 'running' AND status <> 'stopping'
           AND (owner_instance IS NULL OR owner_seen_at IS NULL OR owner_seen_at < now() - make_interval(secs => $2::float8 / 1000))
         FOR UPDATE SKIP LOCKED),
       c AS (
         UPDATE agent_services s SET owner_instance = $1, owner_seen_at = now(), status = 'stopped', pid = NULL,
                health_status = 'unknown', updated_at = now()
         FROM o WHERE s.id = o.id
         RETURNING s.*, o.pid AS orphan_pid)
       SELECT * FROM c`,
      [instance, staleMs],
    );
  }

  /** On a clean shutdown: processes are stopped, the services stay meant to run, no owner. */
  async releaseOwner(instance: string): Promise<void> {
    await this.db.query(
      `UPDATE agent_services SET owner_instance = NULL, status = 'stopped', pid = NULL, health_status = 'unknown', stopped_at = now(), updated_at = now()
       WHERE owner_instance = $1 AND kind = 'managed'`,
      [instance],
    );
  }
}
