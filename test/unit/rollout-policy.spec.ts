import {
  DEFAULT_PER_MINUTE,
  EMPTY_COUNTS,
  releasesPerMinute,
  tokens,
  trippedRule,
} from '../../src/modules/rollouts/rollout-policy.js';
import type { RolloutCounts } from '../../src/modules/rollouts/rollout.types.js';

const at = (ms: number): Date => new Date(1_000_000 + ms);
const counts = (c: Partial<RolloutCounts>): RolloutCounts => ({ ...EMPTY_COUNTS, ...c });

describe('rollout rate (IoT Jobs maximumPerMinute and exponentialRate)', () => {
  it('is per_minute, or the default without a rate', () => {
    expect(releasesPerMinute(null, 0)).toBe(DEFAULT_PER_MINUTE);
    expect(releasesPerMinute({ per_minute: 600 }, 50)).toBe(600);
  });

  it('multiplies base_per_minute by factor per after_succeeded successes, capped at per_minute', () => {
    const rate = { per_minute: 500, exponential: { base_per_minute: 60, factor: 2, after_succeeded: 3 } };
    expect([0, 2, 3, 5, 6, 9, 12, 100].map((s) => releasesPerMinute(rate, s))).toEqual([
      60, 60, 120, 120, 240, 480, 500, 500,
    ]);
  });
});

describe('release tokens', () => {
  it('spaces releases evenly at 600 a minute and keeps the schedule when a round runs late', () => {
    expect(tokens(600, at(0), at(-1), 5)).toEqual({ count: 0, next: at(0) });
    expect(tokens(600, at(0), at(0), 5)).toEqual({ count: 1, next: at(100) });
    // 30 ms late: one release, the next still on the 100 ms grid (no drift).
    expect(tokens(600, at(100), at(130), 5)).toEqual({ count: 1, next: at(200) });
    // 350 ms behind (a stalled round): one now, and the next a full interval later — what the
    // stall owes is not paid back in a burst faster than the rate.
    expect(tokens(600, at(100), at(450), 5)).toEqual({ count: 1, next: at(550) });
  });

  it('starts afresh after an idle stretch instead of bursting', () => {
    expect(tokens(600, at(0), at(1000), 5)).toEqual({ count: 1, next: at(1100) });
    expect(tokens(600, at(0), at(60_000), 5)).toEqual({ count: 1, next: at(60_100) });
    // 6000 a minute: a bucket of a tenth of a second (10 releases), never more.
    expect(tokens(6000, at(0), at(60_000), 50).count).toBe(10);
  });

  it('never gives more than there are queued', () => {
    expect(tokens(6000, at(0), at(50), 2)).toEqual({ count: 2, next: at(20) });
  });
});

describe('abort rules (IoT Jobs abortConfig)', () => {
  const failed30 = { failure_type: 'failed' as const, threshold_percent: 30, min_executed: 5 };

  it('waits for min_executed finished executions', () => {
    expect(trippedRule([failed30], counts({ failed: 4, running: 10 }))).toBeNull();
    expect(trippedRule([failed30], counts({ failed: 5 }))).toMatchObject({ percent: 100 });
  });

  it('compares the failure type share of the finished executions with the threshold', () => {
    expect(trippedRule([failed30], counts({ failed: 2, completed: 5 }))).toBeNull(); // 28.6 %
    expect(trippedRule([failed30], counts({ failed: 3, completed: 7 }))).toMatchObject({ percent: 30 });
    expect(trippedRule([failed30], counts({ timed_out: 5, completed: 1 }))).toBeNull();
    const all = { ...failed30, failure_type: 'all' as const };
    expect(trippedRule([all], counts({ timed_out: 2, rejected: 1, completed: 5 }))).toMatchObject({ percent: 37.5 });
    const timedOut = { ...failed30, failure_type: 'timed_out' as const };
    expect(trippedRule([timedOut], counts({ timed_out: 2, failed: 4, completed: 1 }))).toBeNull();
  });

  it('does not count cancelled tasks as executed', () => {
    expect(trippedRule([failed30], counts({ failed: 1, cancelled: 10, completed: 3 }))).toBeNull();
  });
});
