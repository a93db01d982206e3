import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { LlmUsageRecord } from '../llm-accounting.js';

export type UsageInterval = 'minute' | 'hour' | 'day';

export interface UsageFilter {
  keyId?: string;
  model?: string;
  since: Date;
  until: Date;
  interval: UsageInterval;
}

export interface UsageBucketRow {
  bucket: Date;
  key_id: string | null;
  model: string;
  calls: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  avg_ttft_ms: number | null;
  avg_duration_ms: number;
  p50_duration_ms: number;
}

const RECORD_COLUMNS =
  'request_id, key_id, node_id, requested_model, model, provider, status, stream, prompt_tokens, completion_tokens, ttft_ms, duration_ms, upstream_status, error, started_at';

/** All SQL over `llm_usage`: one row per upstream call. */
@Injectable()
export class LlmUsageRepository {
  constructor(private readonly db: DataSource) {}

  /** One INSERT for the whole batch. */
  async insertMany(rows: LlmUsageRecord[]): Promise<void> {
    await this.db.query(
      `INSERT INTO llm_usage (${RECORD_COLUMNS})
       SELECT ${RECORD_COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS r(
         request_id text, key_id uuid, node_id text, requested_model text, model text, provider text, status text,
         stream boolean, prompt_tokens int, completion_tokens int, ttft_ms int, duration_ms int, upstream_status int,
         error text, started_at timestamptz)`,
      [JSON.stringify(rows)],
    );
  }

  /**
   * Calls per bucket, key and served model (`model` filters on the served or the requested
   * model). Errors are failed and timed-out calls.
   */
  async rollup(f: UsageFilter): Promise<UsageBucketRow[]> {
    return this.db.query(
      `SELECT date_trunc($1, started_at, 'UTC') AS bucket, key_id, model,
              count(*)::int AS calls,
              count(*) FILTER (WHERE status IN ('failed', 'timeout'))::int AS errors,
              sum(prompt_tokens)::float8 AS prompt_tokens,
              sum(completion_tokens)::float8 AS completion_tokens,
              round(avg(ttft_ms))::float8 AS avg_ttft_ms,
              round(avg(duration_ms))::float8 AS avg_duration_ms,
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms))::float8 AS p50_duration_ms
       FROM llm_usage
       WHERE started_at >= $2 AND started_at < $3
         AND ($4::uuid IS NULL OR key_id = $4::uuid)
         AND ($5::text IS NULL OR model = $5::text OR requested_model = $5::text)
       GROUP BY 1, key_id, model
       ORDER BY 1, key_id NULLS FIRST, model`,
      [f.interval, f.since, f.until, f.keyId ?? null, f.model ?? null],
    );
  }

  /** Tokens a tenant's calls used in the last `days` (IDX_llm_usage_tenant_started): its LLM budget's window. */
  async tenantTokensSince(tenantId: string, days: number): Promise<number> {
    const [row]: { n: number }[] = await this.db.query(
      `SELECT COALESCE(sum(prompt_tokens + completion_tokens), 0)::float8 AS n FROM llm_usage
       WHERE tenant_id = $1 AND started_at >= now() - make_interval(days => $2)`,
      [tenantId, days],
    );
    return row.n;
  }

  /** Forgets up to `limit` calls older than `days`, oldest first; how many. */
  async prune(days: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM llm_usage WHERE id IN (
           SELECT id FROM llm_usage WHERE started_at < now() - make_interval(days => $1) ORDER BY started_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [days, limit],
    );
    return rows[0].n;
  }
}
