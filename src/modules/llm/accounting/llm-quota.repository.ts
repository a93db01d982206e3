import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The limits a reservation is checked against (null: that limit is off). */
export interface QuotaLimits {
  rpm: number | null;
  tpm: number | null;
  maxParallel: number | null;
  budgetTokens: number | null;
  /** Length of a budget period in seconds; null: the budget never renews. */
  budgetSeconds: number | null;
}

/** What a successful reservation took: enough for settle to find its window and period. */
export interface QuotaTaken {
  window_start: Date;
  budget_start: Date;
}

/** The key's counters as a reservation now would see them (windows rolled), for telling why one was refused. */
export interface QuotaUsage {
  window_requests: number;
  window_tokens: number;
  budget_tokens: number;
  in_flight: number;
  /** Seconds until the per-minute window rolls, and until the budget period renews (null: never). */
  window_reset_seconds: number;
  budget_reset_seconds: number | null;
}

const NOW_MS = `(extract(epoch FROM now()) * 1000)::bigint`;
const WINDOW = `date_trunc('minute', now())`;
const SAME_WINDOW = `q.window_start = ${WINDOW}`;
/** The budget period has run out (`param`: its length in seconds; null: it never renews). */
const budgetRolled = (param: string): string =>
  `(${param}::int IS NOT NULL AND q.budget_start + make_interval(secs => ${param}::int) <= now())`;
const BUDGET_ROLLED = budgetRolled('$6');
/** Parallel slots still held: reservation id → expiry (epoch ms); expired ones are a dead process's. */
const LIVE_SLOTS = `COALESCE((SELECT jsonb_object_agg(s.key, s.value) FROM jsonb_each(q.in_flight) s WHERE (s.value)::bigint > ${NOW_MS}), '{}'::jsonb)`;
const LIVE_COUNT = `(SELECT count(*) FROM jsonb_each(q.in_flight) s WHERE (s.value)::bigint > ${NOW_MS})`;

/**
 * All SQL over `llm_key_quota`: one row per limited key with the current minute window, the
 * current budget period and the parallel slots in flight. A reservation is one upsert whose
 * DO UPDATE … WHERE checks every limit on the row it locked, so concurrent reservations of a
 * key serialize on that row and can never overrun it.
 */
@Injectable()
export class LlmQuotaRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Reserves 1 request, `tokens` and one parallel slot (`slotId`, held for `slotTtlMs`), or
   * nothing: undefined when any limit would be passed.
   * $1 key, $2 rpm, $3 tpm, $4 max_parallel, $5 budget_tokens, $6 budget seconds, $7 tokens, $8 slot id, $9 slot ttl ms.
   */
  async reserve(
    keyId: string,
    limits: QuotaLimits,
    tokens: number,
    slotId: string,
    slotTtlMs: number,
  ): Promise<QuotaTaken | undefined> {
    const rows: QuotaTaken[] = await this.db.query(
      `INSERT INTO llm_key_quota AS q (key_id, window_start, window_requests, window_tokens, budget_start, budget_tokens, in_flight)
       SELECT $1, ${WINDOW}, 1, $7, date_trunc('second', now()), $7, jsonb_build_object($8::text, ${NOW_MS} + $9::bigint)
       WHERE ($3::bigint IS NULL OR $7::bigint <= $3::bigint) AND ($5::bigint IS NULL OR $7::bigint <= $5::bigint)
         AND ($2::int IS NULL OR $2::int >= 1) AND ($4::int IS NULL OR $4::int >= 1)
       ON CONFLICT (key_id) DO UPDATE SET
         window_start = ${WINDOW},
         window_requests = (CASE WHEN ${SAME_WINDOW} THEN q.window_requests ELSE 0 END) + 1,
         window_tokens = (CASE WHEN ${SAME_WINDOW} THEN q.window_tokens ELSE 0 END) + $7::bigint,
         budget_start = CASE WHEN ${BUDGET_ROLLED} THEN date_trunc('second', now()) ELSE q.budget_start END,
         budget_tokens = (CASE WHEN ${BUDGET_ROLLED} THEN 0 ELSE q.budget_tokens END) + $7::bigint,
         in_flight = ${LIVE_SLOTS} || jsonb_build_object($8::text, ${NOW_MS} + $9::bigint)
       WHERE ($2::int IS NULL OR (CASE WHEN ${SAME_WINDOW} THEN q.window_requests ELSE 0 END) + 1 <= $2::int)
         AND ($3::bigint IS NULL OR (CASE WHEN ${SAME_WINDOW} THEN q.window_tokens ELSE 0 END) + $7::bigint <= $3::bigint)
         AND ($4::int IS NULL OR ${LIVE_COUNT} + 1 <= $4::int)
         AND ($5::bigint IS NULL OR (CASE WHEN ${BUDGET_ROLLED} THEN 0 ELSE q.budget_tokens END) + $7::bigint <= $5::bigint)
       RETURNING window_start, budget_start`,
      [
        keyId,
        limits.rpm,
        limits.tpm,
        limits.maxParallel,
        limits.budgetTokens,
        limits.budgetSeconds,
        tokens,
        slotId,
        slotTtlMs,
      ],
    );
    return rows[0];
  }

  /**
   * Settles a reservation: adds `delta` tokens (actual − estimate) to the window and period it
   * was taken in (a refund never takes a counter below 0; once they rolled, only extra use is
   * charged, to the current ones) and frees its slot. Freeing an absent slot does nothing.
   */
  async settle(keyId: string, taken: QuotaTaken, delta: number, slotId: string): Promise<void> {
    await this.db.query(
      `UPDATE llm_key_quota SET
         window_tokens = CASE WHEN window_start = $2 THEN GREATEST(window_tokens + $4::bigint, 0) ELSE window_tokens + GREATEST($4::bigint, 0) END,
         budget_tokens = CASE WHEN budget_start = $3 THEN GREATEST(budget_tokens + $4::bigint, 0) ELSE budget_tokens + GREATEST($4::bigint, 0) END,
         in_flight = in_flight - $5::text
       WHERE key_id = $1`,
      [keyId, taken.window_start, taken.budget_start, delta, slotId],
    );
  }

  /** The key's counters as of now (zero when it has no row yet). $2: budget seconds. */
  async usage(keyId: string, budgetSeconds: number | null): Promise<QuotaUsage> {
    const rows: QuotaUsage[] = await this.db.query(
      `SELECT
         (CASE WHEN ${SAME_WINDOW} THEN q.window_requests ELSE 0 END)::int AS window_requests,
         (CASE WHEN ${SAME_WINDOW} THEN q.window_tokens ELSE 0 END)::float8 AS window_tokens,
         (CASE WHEN ${budgetRolled('$2')} THEN 0 ELSE q.budget_tokens END)::float8 AS budget_tokens,
         ${LIVE_COUNT}::int AS in_flight,
         extract(epoch FROM ${WINDOW} + interval '1 minute' - now())::float8 AS window_reset_seconds,
         CASE WHEN $2::int IS NULL THEN NULL
              ELSE GREATEST(extract(epoch FROM q.budget_start + make_interval(secs => $2::int) - now()), 0)::float8 END AS budget_reset_seconds
       FROM llm_key_quota q WHERE q.key_id = $1`,
      [keyId, budgetSeconds],
    );
    return (
      rows[0] ?? {
        window_requests: 0,
        window_tokens: 0,
        budget_tokens: 0,
        in_flight: 0,
        window_reset_seconds: 60 - ((Date.now() / 1000) % 60),
        budget_reset_seconds: null,
      }
    );
  }
}
