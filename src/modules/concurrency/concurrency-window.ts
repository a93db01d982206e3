/**
 * The rolling window of `max_per_minute`: 60 s. CONCURRENCY_RATE_WINDOW_MS (hidden, for tests
 * only: docs/flow-control.md) shortens it so a suite can watch several windows in seconds.
 * Read once at start: every hub of a deployment must run with the same value.
 */
export const RATE_WINDOW_MS = windowOf(process.env.CONCURRENCY_RATE_WINDOW_MS);

function windowOf(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 60_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100 || ms > 3_600_000)
    throw new Error(`CONCURRENCY_RATE_WINDOW_MS must be an integer between 100 and 3600000 (got ${raw})`);
  return ms;
}

/** A key: 1-128 characters of letters, digits, `_`, `.`, `:` and `-` (safe in a URL path, a log line, a metric label). */
export const KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const KEY_RULE = '1-128 characters of A-Z a-z 0-9 _ . : -';

export const isConcurrencyKey = (v: unknown): v is string => typeof v === 'string' && KEY_PATTERN.test(v);

/** One tenant's key, as one string (sets and maps of keys across tenants). */
export const tenantKey = (tenantId: string, key: string): string => `${tenantId}\n${key}`;
