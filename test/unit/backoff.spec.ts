import { backoffBoundsMs, backoffCeilingMs, backoffDelayMs, backoffSql } from '../../src/modules/tasks/backoff.js';

describe('retry backoff', () => {
  it('doubles per retry up to the cap', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffCeilingMs(n, 1000, 10_000))).toEqual([1000, 2000, 4000, 8000, 10_000]);
    expect(backoffCeilingMs(60, 1000, 10_000)).toBe(10_000);
  });

  it('keeps jittered delays between half and the whole ceiling', () => {
    expect(backoffDelayMs(2, 1000, 60_000, () => 0)).toBe(2000);
    expect(backoffDelayMs(2, 1000, 60_000, () => 0.999999)).toBeCloseTo(4000, 0);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, 500, 60_000);
      const { min, max } = backoffBoundsMs(3, 500, 60_000);
      expect(d).toBeGreaterThanOrEqual(min);
      expect(d).toBeLessThanOrEqual(max);
    }
  });

  it('spreads retries of tasks that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => Math.round(backoffDelayMs(4, 1000, 600_000))));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('renders the same formula as SQL with only integers inlined', () => {
    const sql = backoffSql('t.retry_count', 1000.7, 300000);
    expect(sql).toContain('LEAST(300000::float8, 1000::float8');
    expect(sql).toContain('GREATEST(t.retry_count, 0)');
    expect(sql).toContain('random()');
  });
});
