import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface StatSample {
  /** Null: the hub-wide row of the tenant (one per tenant per sample set). */
  service_id: string | null;
  tenant_id: string;
  connections: number;
  sessions: number;
  opened: number;
  messages: number;
  errors: number;
  /** The health check's response time (the `response_time` series). */
  response_time_ms: number | null;
  /** Agent answers timed by the proxy in this sample, and their summed time. */
  responses: number;
  response_ms_sum: number;
}

export const TIMESERIES_METRICS = ['connections', 'sessions', 'messages', 'response_time', 'error_rate'] as const;
export type TimeseriesMetric = (typeof TIMESERIES_METRICS)[number];

/** Per-bucket aggregate of each metric: levels are averaged, counts summed, the error rate is errors per new connection. */
const METRIC_SQL: Record<TimeseriesMetric, string> = {
  connections: 'avg(connections)',
  sessions: 'avg(sessions)',
  messages: 'sum(messages)',
  response_time: 'avg(response_time_ms)',
  error_rate: 'sum(errors)::float8 / nullif(sum(opened), 0)',
};

@Injectable()
export class StatsRepository {
  constructor(private readonly db: DataSource) {}

  /** One statement for the whole sample set. */
  async insert(samples: StatSample[]): Promise<void> {
    if (samples.length === 0) return;
    await this.db.query(
      `INSERT INTO service_stat_samples (service_id, connections, sessions, opened, messages, errors, response_time_ms, tenant_id,
         responses, response_ms_sum)
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::real[], $8::text[],
         $9::int[], $10::float8[])`,
      [
        samples.map((s) => s.service_id),
        samples.map((s) => s.connections),
        samples.map((s) => s.sessions),
        samples.map((s) => s.opened),
        samples.map((s) => s.messages),
        samples.map((s) => s.errors),
        samples.map((s) => s.response_time_ms),
        samples.map((s) => s.tenant_id),
        samples.map((s) => s.responses),
        samples.map((s) => s.response_ms_sum),
      ],
    );
  }

  /** Removes up to `limit` samples older than `seconds`, oldest first; how many. */
  async prune(seconds: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM service_stat_samples WHERE id IN (
           SELECT id FROM service_stat_samples WHERE sampled_at < now() - make_interval(secs => $1)
           ORDER BY sampled_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [seconds, limit],
    );
    return rows[0].n;
  }

  /**
   * Buckets of `intervalS` seconds over the last `periodS` seconds; only buckets with samples.
   * The hub series (no service) sums each sample set's per-tenant rows first: the system sees
   * every tenant's, a tenant its own (row-level security).
   */
  async timeseries(
    metric: TimeseriesMetric,
    periodS: number,
    intervalS: number,
    serviceId: string | null,
  ): Promise<{ timestamp: string; value: number | null }[]> {
    const rows: { bucket: Date; value: number | null }[] = await this.db.query(
      `WITH sets AS (
         SELECT sampled_at, sum(connections) AS connections, sum(sessions) AS sessions, sum(opened) AS opened,
                sum(messages) AS messages, sum(errors) AS errors, avg(response_time_ms) AS response_time_ms
         FROM service_stat_samples
         WHERE sampled_at >= now() - make_interval(secs => $2) AND service_id IS NOT DISTINCT FROM $3::uuid
         GROUP BY sampled_at)
       SELECT to_timestamp(floor(extract(epoch FROM sampled_at) / $1) * $1) AS bucket, ${METRIC_SQL[metric]} AS value
       FROM sets GROUP BY 1 ORDER BY 1`,
      [intervalS, periodS, serviceId],
    );
    return rows.map((r) => ({
      timestamp: new Date(r.bucket).toISOString(),
      value: r.value === null ? null : Math.round(Number(r.value) * 1000) / 1000,
    }));
  }

  /** Highest hub-wide (a tenant: its own) connection level sampled since `since`. */
  async peakConnections(since: Date): Promise<number> {
    const [row] = (await this.db.query(
      `SELECT coalesce(max(connections), 0)::int AS peak FROM (
         SELECT sum(connections) AS connections FROM service_stat_samples
         WHERE service_id IS NULL AND sampled_at >= $1 GROUP BY sampled_at) sets`,
      [since],
    )) as { peak: number }[];
    return row.peak;
  }

  /** Hub-wide messages sampled since `since`, and since when the samples reach back. */
  async messagesSince(since: Date): Promise<{ messages: number; first: Date | null }> {
    const [row] = (await this.db.query(
      `SELECT coalesce(sum(messages), 0)::int AS messages, min(sampled_at) AS first FROM service_stat_samples WHERE service_id IS NULL AND sampled_at >= $1`,
      [since],
    )) as { messages: number; first: Date | null }[];
    return row;
  }

  /** Agent answers timed in the hub-wide samples since `since` (a tenant: its own), and their summed time. */
  async responsesSince(since: Date): Promise<{ responses: number; ms: number }> {
    const [row] = (await this.db.query(
      `SELECT coalesce(sum(responses), 0)::float8 AS responses, coalesce(sum(response_ms_sum), 0)::float8 AS ms
       FROM service_stat_samples WHERE service_id IS NULL AND sampled_at >= $1`,
      [since],
    )) as { responses: number; ms: number }[];
    return { responses: Number(row.responses), ms: Number(row.ms) };
  }

  async avgHealthResponseMs(since: Date): Promise<number | null> {
    const [row] = (await this.db.query(
      `SELECT avg(response_time_ms) AS avg FROM service_health_checks WHERE checked_at >= $1 AND status = 'healthy'`,
      [since],
    )) as {
      avg: number | null;
    }[];
    return row.avg === null ? null : Math.round(Number(row.avg) * 100) / 100;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows: { status: string; n: number }[] = await this.db.query(
      `SELECT status, count(*)::int AS n FROM agent_services GROUP BY status`,
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }
}
