/**
 * Retry backoff: exponential with "equal jitter". The n-th retry (n = retries so far)
 * waits d/2 + random·d/2 where d = min(cap, base·2^n), so waits grow, never exceed the
 * cap, and retries of tasks that failed together spread out.
 *
 * The database applies the same formula (backoffSql) so a whole batch of expired or
 * failed tasks is rescheduled in one statement.
 */
export function backoffCeilingMs(retriesSoFar: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, retriesSoFar));
}

export function backoffBoundsMs(retriesSoFar: number, baseMs: number, capMs: number): { min: number; max: number } {
  const ceiling = backoffCeilingMs(retriesSoFar, baseMs, capMs);
  return { min: ceiling / 2, max: ceiling };
}

export function backoffDelayMs(retriesSoFar: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = backoffCeilingMs(retriesSoFar, baseMs, capMs);
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * SQL for the same delay as an interval, for a row whose retries so far are in
 * `retryColumn`. base and cap are integers from validated config, inlined as numbers.
 */
export function backoffSql(retryColumn: string, baseMs: number, capMs: number): string {
  const base = Math.trunc(baseMs);
  const cap = Math.trunc(capMs);
  const ceiling = `LEAST(${cap}::float8, ${base}::float8 * power(2::float8, GREATEST(${retryColumn}, 0)))`;
  return `((${ceiling} / 2 + random() * ${ceiling} / 2) * interval '1 millisecond')`;
}
