import type { AbortRule, RolloutCounts, RolloutRate } from './rollout.types.js';

/** Releases a minute when a rollout names no rate: IoT Jobs' default maximumPerMinute. */
export const DEFAULT_PER_MINUTE = 1000;

/**
 * The releases a minute now. No rate: DEFAULT_PER_MINUTE. Exponential (IoT Jobs'
 * exponentialRate with rateIncreaseCriteria.numberOfSucceededThings): base_per_minute times
 * factor for every `after_succeeded` executions that succeeded so far, never above per_minute
 * (IoT Jobs' maximumPerMinute).
 */
export function releasesPerMinute(rate: RolloutRate | null, succeeded: number): number {
  if (!rate) return DEFAULT_PER_MINUTE;
  const exp = rate.exponential;
  if (!exp) return rate.per_minute;
  const steps = Math.floor(succeeded / exp.after_succeeded);
  return Math.min(rate.per_minute, exp.base_per_minute * Math.pow(exp.factor, steps));
}

/**
 * One round of a token bucket that gives out a tenth of a second's releases at most (at least
 * one, so at 600 a minute or less releases are spaced evenly): `due` is when the next token
 * comes. A round late by less than a bucket's time keeps the grid (so a few ms of lag per round
 * do not slow the rate down); one later than that, or a rollout idle or stalled, starts afresh
 * from now. It never pays back what a stall owes: a burst of catch-up releases would run faster
 * than the rate (AWS IoT Jobs' maximumPerMinute is a ceiling). Answers how many may go now and
 * when the next token comes after them.
 */
export function tokens(perMinute: number, due: Date, now: Date, want: number): { count: number; next: Date } {
  const interval = 60_000 / perMinute;
  const bucket = Math.max(1, Math.floor(perMinute / 600));
  let from = due.getTime();
  const lag = now.getTime() - from;
  if (lag < 0) return { count: 0, next: due };
  if (lag >= bucket * interval) from = now.getTime() - (bucket - 1) * interval;
  const available = Math.min(bucket, 1 + Math.floor((now.getTime() - from) / interval));
  const count = Math.min(available, want);
  return { count, next: new Date(from + count * interval) };
}

/** Executions that ran to an end (cancelled ones never finished executing; queued ones never started). */
export function executed(c: RolloutCounts): number {
  return c.completed + c.failed + c.timed_out + c.rejected;
}

/** The first rule that trips: at least `min_executed` finished and the failure type's share at or past the threshold. */
export function trippedRule(rules: AbortRule[], c: RolloutCounts): { rule: AbortRule; percent: number } | null {
  const done = executed(c);
  for (const rule of rules) {
    if (done === 0 || done < rule.min_executed) continue;
    const failures =
      rule.failure_type === 'failed'
        ? c.failed + c.rejected
        : rule.failure_type === 'timed_out'
          ? c.timed_out
          : c.failed + c.rejected + c.timed_out;
    const percent = (failures * 100) / done;
    if (percent >= rule.threshold_percent) return { rule, percent };
  }
  return null;
}

export const EMPTY_COUNTS: RolloutCounts = {
  queued: 0,
  pending: 0,
  dispatched: 0,
  running: 0,
  completed: 0,
  failed: 0,
  timed_out: 0,
  cancelled: 0,
  rejected: 0,
};

/** Every targeted node has a finished execution (nothing queued, nothing open). */
export function allFinished(c: RolloutCounts): boolean {
  return c.queued === 0 && c.pending === 0 && c.dispatched === 0 && c.running === 0;
}
