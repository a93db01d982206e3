import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A service's stored counters plus what its open sessions add, summed over every hub process. */
export interface StoredServiceStats {
  total_connections: number;
  active_connections: number;
  peak_connections: number;
  total_sessions: number;
  active_sessions: number;
  completed_sessions: number;
  session_seconds: number;
  errors: number;
  /** Messages relayed either way, as of the last stats sample of each hub process. */
  messages: number;
  /** Agent answers timed by the proxy and their summed time (avg_response_time_ms). */
  responses: number;
  response_ms_sum: number;
}

/** What one hub process relayed for a service since its previous stats sample. */
export interface ServiceActivity {
  service_id: string;
  messages: number;
  responses: number;
  response_ms_sum: number;
}

export const EMPTY_STATS: StoredServiceStats = {
  total_connections: 0,
  active_connections: 0,
  peak_connections: 0,
  total_sessions: 0,
  active_sessions: 0,
  completed_sessions: 0,
  session_seconds: 0,
  errors: 0,
  messages: 0,
  responses: 0,
  response_ms_sum: 0,
};

/** Adds a session's completion to its service's counters, for a CTE `ended(service_id, seconds)`. */
const COUNT_COMPLETED = `
  INSERT INTO agent_service_counters AS c (service_id, completed_sessions, session_seconds)
  SELECT service_id, count(*), sum(seconds) FROM ended WHERE service_id IS NOT NULL GROUP BY service_id
  ON CONFLICT (service_id) DO UPDATE SET completed_sessions = c.completed_sessions + excluded.completed_sessions,
    session_seconds = c.session_seconds + excluded.session_seconds, updated_at = now()`;

/**
 * `agent_sessions` and `agent_service_counters`: the proxy's session and connection counts,
 * shared by every hub process and kept over restarts. Each write is one statement. A session
 * is one run of a `session_id` (a reconnect after it ended starts a new run); it counts as
 * completed when its last connection closes, at the service it is on then. So
 * `total_sessions = completed + active` and `completed ≤ total` always.
 */
@Injectable()
export class SessionStatsRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * A connection of the session is bound to a service (its first bind). Session ids are the
   * clients' own, unique per tenant (`tenant`: the service's): every write names the tenant,
   * since the proxy may write as the system.
   */
  async openConnection(sessionId: string, serviceId: string, instanceId: string, tenant: string): Promise<void> {
    await this.db.query(
      `WITH s AS (
         INSERT INTO agent_sessions AS s (session_id, service_id, open_connections, instance_id, tenant_id)
         VALUES ($1, $2, 1, $3, $4)
         ON CONFLICT (tenant_id, session_id) DO UPDATE SET open_connections = s.open_connections + 1, service_id = excluded.service_id,
           instance_id = excluded.instance_id, ended_at = NULL,
           started_at = CASE WHEN s.open_connections = 0 THEN now() ELSE s.started_at END
         RETURNING open_connections)
       INSERT INTO agent_service_counters AS c (service_id, total_connections, peak_connections)
       SELECT $2, 1, (SELECT open_connections FROM s)
         + coalesce((SELECT sum(open_connections) FROM agent_sessions WHERE service_id = $2 AND open_connections > 0 AND session_id <> $1), 0)
       ON CONFLICT (service_id) DO UPDATE SET total_connections = c.total_connections + 1,
         peak_connections = greatest(c.peak_connections, excluded.peak_connections), updated_at = now()`,
      [sessionId, serviceId, instanceId, tenant],
    );
  }

  /**
   * The session's connection was routed again (fail-over): the session moves to `serviceId`,
   * and that is a new connection to it (counted in its total and its peak), as the client's
   * first one was to the service it left.
   */
  async rebind(sessionId: string, serviceId: string, tenant: string): Promise<void> {
    await this.db.query(
      `WITH s AS (
         UPDATE agent_sessions SET service_id = $2 WHERE session_id = $1 AND tenant_id = $3 AND open_connections > 0
         RETURNING open_connections)
       INSERT INTO agent_service_counters AS c (service_id, total_connections, peak_connections)
       SELECT $2, 1, coalesce((SELECT open_connections FROM s), 1)
         + coalesce((SELECT sum(open_connections) FROM agent_sessions WHERE service_id = $2 AND open_connections > 0
                     AND NOT (session_id = $1 AND tenant_id = $3)), 0)
       ON CONFLICT (service_id) DO UPDATE SET total_connections = c.total_connections + 1,
         peak_connections = greatest(c.peak_connections, excluded.peak_connections), updated_at = now()`,
      [sessionId, serviceId, tenant],
    );
  }

  /**
   * Raises the day's peak of open proxied connections, the tenant's and the hub's ('*'), to
   * the level now (run as the system: the hub's level counts every tenant's sessions).
   */
  async recordPeak(tenant: string, day: string): Promise<void> {
    await this.db.query(
      `INSERT INTO agent_connection_peaks AS p (tenant_id, day, peak)
       SELECT $1, $2::date, coalesce(sum(open_connections) FILTER (WHERE tenant_id = $1), 0)::int
         FROM agent_sessions WHERE open_connections > 0
       UNION ALL
       SELECT '*', $2::date, coalesce(sum(open_connections), 0)::int FROM agent_sessions WHERE open_connections > 0
       ON CONFLICT (tenant_id, day) DO UPDATE SET peak = greatest(p.peak, excluded.peak), updated_at = now()`,
      [tenant, day],
    );
  }

  /** The day's stored peak for `scope` (a tenant, or '*' for the whole hub); 0 before any connection. */
  async peakOf(scope: string, day: string): Promise<number> {
    const [row] = (await this.db.query(
      `SELECT peak FROM agent_connection_peaks WHERE tenant_id = $1 AND day = $2::date`,
      [scope, day],
    )) as { peak: number }[];
    return row?.peak ?? 0;
  }

  /** Adds each service's relayed messages and timed answers since the last sample (a removed service is skipped). */
  async addActivity(rows: ServiceActivity[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.query(
      `INSERT INTO agent_service_counters AS c (service_id, messages, responses, response_ms_sum)
       SELECT a.id, a.messages, a.responses, a.ms
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::float8[]) AS a(id, messages, responses, ms)
        WHERE EXISTS (SELECT 1 FROM agent_services s WHERE s.id = a.id)
       ON CONFLICT (service_id) DO UPDATE SET messages = c.messages + excluded.messages,
         responses = c.responses + excluded.responses, response_ms_sum = c.response_ms_sum + excluded.response_ms_sum,
         updated_at = now()`,
      [
        rows.map((r) => r.service_id),
        rows.map((r) => r.messages),
        rows.map((r) => r.responses),
        rows.map((r) => r.response_ms_sum),
      ],
    );
  }

  /** Forgets up to `limit` daily peaks of days more than `keepDays` before `day`; how many. */
  async prunePeaks(day: string, keepDays: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM agent_connection_peaks WHERE (tenant_id, day) IN (
           SELECT tenant_id, day FROM agent_connection_peaks WHERE day < $1::date - $2::int LIMIT $3)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [day, keepDays, limit],
    );
    return rows[0].n;
  }

  /** A connection of the session closed; its last one completes the session. */
  async closeConnection(sessionId: string, tenant: string): Promise<void> {
    await this.db.query(
      `WITH s AS (
         UPDATE agent_sessions SET open_connections = open_connections - 1, ended_at = CASE WHEN open_connections = 1 THEN now() END
         WHERE session_id = $1 AND tenant_id = $2 AND open_connections > 0
         RETURNING service_id, open_connections, started_at, ended_at),
       ended AS (SELECT service_id, extract(epoch FROM ended_at - started_at)::float8 AS seconds FROM s WHERE open_connections = 0)
       ${COUNT_COMPLETED}`,
      [sessionId, tenant],
    );
  }

  async countError(serviceId: string): Promise<void> {
    await this.db.query(
      `INSERT INTO agent_service_counters AS c (service_id, errors) VALUES ($1, 1)
       ON CONFLICT (service_id) DO UPDATE SET errors = c.errors + 1, updated_at = now()`,
      [serviceId],
    );
  }

  /** Sessions held by hub processes that are gone (crashed, or this one before a restart) end now. */
  async endOrphans(selfId: string): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH s AS (
         UPDATE agent_sessions SET open_connections = 0, ended_at = now()
         WHERE open_connections > 0 AND (instance_id IS NULL
           OR (instance_id <> $1 AND NOT EXISTS (SELECT 1 FROM hub_instances h WHERE h.id = agent_sessions.instance_id)))
         RETURNING service_id, started_at, ended_at),
       ended AS (SELECT service_id, extract(epoch FROM ended_at - started_at)::float8 AS seconds FROM s),
       counted AS (${COUNT_COMPLETED} RETURNING 1)
       SELECT (SELECT count(*) FROM s)::int AS n`,
      [selfId],
    );
    return rows[0]?.n ?? 0;
  }

  /** Per service, for the given ids (a missing id has no activity yet). */
  async statsFor(serviceIds: string[]): Promise<Map<string, StoredServiceStats>> {
    if (serviceIds.length === 0) return new Map();
    const rows: (StoredServiceStats & { service_id: string })[] = await this.db.query(
      `SELECT id AS service_id,
         coalesce(c.total_connections, 0)::float8 AS total_connections, coalesce(c.peak_connections, 0) AS peak_connections,
         coalesce(c.completed_sessions, 0)::float8 AS completed_sessions, coalesce(c.session_seconds, 0) AS session_seconds,
         coalesce(c.errors, 0)::float8 AS errors, coalesce(c.messages, 0)::float8 AS messages,
         coalesce(c.responses, 0)::float8 AS responses, coalesce(c.response_ms_sum, 0) AS response_ms_sum, coalesce(o.sessions, 0)::int AS active_sessions, coalesce(o.connections, 0)::int AS active_connections
       FROM unnest($1::uuid[]) AS id
       LEFT JOIN agent_service_counters c ON c.service_id = id
       LEFT JOIN LATERAL (SELECT count(*) AS sessions, sum(open_connections) AS connections FROM agent_sessions
                          WHERE service_id = id AND open_connections > 0) o ON true`,
      [serviceIds],
    );
    return new Map(
      rows.map((r) => [
        r.service_id,
        {
          total_connections: Number(r.total_connections),
          active_connections: r.active_connections,
          peak_connections: Math.max(r.peak_connections, r.active_connections),
          total_sessions: Number(r.completed_sessions) + r.active_sessions,
          active_sessions: r.active_sessions,
          completed_sessions: Number(r.completed_sessions),
          session_seconds: Number(r.session_seconds),
          errors: Number(r.errors),
          messages: Number(r.messages),
          responses: Number(r.responses),
          response_ms_sum: Number(r.response_ms_sum),
        },
      ]),
    );
  }

  /** Hub-wide: counters summed over services, sessions active now and completed since `since`. */
  async overview(since: Date): Promise<{
    connections: number;
    active_connections: number;
    errors: number;
    active_sessions: number;
    completed_since: number;
  }> {
    const [row] = (await this.db.query(
      `SELECT (SELECT coalesce(sum(total_connections), 0)::float8 FROM agent_service_counters) AS connections,
              (SELECT coalesce(sum(errors), 0)::float8 FROM agent_service_counters) AS errors,
              (SELECT coalesce(sum(open_connections), 0)::int FROM agent_sessions WHERE open_connections > 0) AS active_connections,
              (SELECT count(*)::int FROM agent_sessions WHERE open_connections > 0) AS active_sessions,
              (SELECT count(*)::int FROM agent_sessions WHERE open_connections = 0 AND ended_at >= $1) AS completed_since`,
      [since],
    )) as {
      connections: number;
      errors: number;
      active_connections: number;
      active_sessions: number;
      completed_since: number;
    }[];
    return { ...row, connections: Number(row.connections), errors: Number(row.errors) };
  }

  /** Forgets up to `limit` sessions ended more than `seconds` ago (their completion stays in the counters); how many. */
  async prune(seconds: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM agent_sessions WHERE (tenant_id, session_id) IN (
           SELECT tenant_id, session_id FROM agent_sessions
           WHERE open_connections = 0 AND ended_at < now() - make_interval(secs => $1)
           ORDER BY ended_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [seconds, limit],
    );
    return rows[0].n;
  }
}
