import { CronError, nextFireTime, parseCron } from '../../src/modules/schedules/cron.js';
import { canonicalTimeZone, toWall, wallToInstant } from '../../src/modules/schedules/zoned-time.js';

/** The next `n` fire times after `from`, as ISO strings. */
function fires(expr: string, from: string, n = 1, tz = 'UTC'): (string | null)[] {
  const spec = parseCron(expr);
  const out: (string | null)[] = [];
  let at = new Date(from);
  for (let i = 0; i < n; i++) {
    const next = nextFireTime(spec, at, tz);
    out.push(next?.toISOString() ?? null);
    if (!next) break;
    at = next;
  }
  return out;
}

describe('cron expressions', () => {
  it('reads the five standard fields with *, values, lists, ranges and steps', () => {
    expect(fires('*/5 * * * *', '2025-06-01T12:03:10Z', 3)).toEqual([
      '2025-06-01T12:05:00.000Z',
      '2025-06-01T12:10:00.000Z',
      '2025-06-01T12:15:00.000Z',
    ]);
    expect(fires('0 9,17 * * *', '2025-06-01T10:00:00Z', 3)).toEqual([
      '2025-06-01T17:00:00.000Z',
      '2025-06-02T09:00:00.000Z',
      '2025-06-02T17:00:00.000Z',
    ]);
    expect(fires('10-20/5 3 * * *', '2025-06-01T00:00:00Z', 4)).toEqual([
      '2025-06-01T03:10:00.000Z',
      '2025-06-01T03:15:00.000Z',
      '2025-06-01T03:20:00.000Z',
      '2025-06-02T03:10:00.000Z',
    ]);
    expect(fires('50/5 0 1 1 *', '2025-06-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T00:50:00.000Z',
      '2026-01-01T00:55:00.000Z',
      '2027-01-01T00:50:00.000Z',
    ]);
  });

  it('takes month and day names, and 7 as Sunday', () => {
    // 2025-06-01 is a Sunday.
    expect(fires('0 9 * jan-mar,jun MON-fri', '2025-06-01T00:00:00Z', 2)).toEqual([
      '2025-06-02T09:00:00.000Z',
      '2025-06-03T09:00:00.000Z',
    ]);
    expect(fires('0 0 * * 7', '2025-06-02T00:00:00Z')).toEqual(['2025-06-08T00:00:00.000Z']);
    expect(fires('0 0 * * sun', '2025-06-02T00:00:00Z')).toEqual(['2025-06-08T00:00:00.000Z']);
  });

  it('fires on either day field when both are restricted, on the other when one is *', () => {
    // The 13th, or any Friday (Vixie cron).
    expect(fires('0 0 13 * fri', '2025-06-01T00:00:00Z', 3)).toEqual([
      '2025-06-06T00:00:00.000Z',
      '2025-06-13T00:00:00.000Z',
      '2025-06-20T00:00:00.000Z',
    ]);
    expect(fires('0 0 13 * *', '2025-06-01T00:00:00Z')).toEqual(['2025-06-13T00:00:00.000Z']);
    // A day field starting with * does not restrict: the 1st, 11th, 21st or 31st that is a Friday.
    expect(fires('0 0 */10 * fri', '2025-06-01T00:00:00Z', 2)).toEqual([
      '2025-07-11T00:00:00.000Z',
      '2025-08-01T00:00:00.000Z',
    ]);
  });

  it('reads six fields as seconds first, and fires at most once a second', () => {
    expect(fires('*/20 * * * * *', '2025-06-01T00:00:05.500Z', 3)).toEqual([
      '2025-06-01T00:00:20.000Z',
      '2025-06-01T00:00:40.000Z',
      '2025-06-01T00:01:00.000Z',
    ]);
    expect(fires('* * * * * *', '2025-06-01T00:00:00.999Z', 2)).toEqual([
      '2025-06-01T00:00:01.000Z',
      '2025-06-01T00:00:02.000Z',
    ]);
  });

  it('knows the macros, leap days, and expressions that never fire', () => {
    expect(fires('@hourly', '2025-06-01T00:30:00Z')).toEqual(['2025-06-01T01:00:00.000Z']);
    expect(fires('@weekly', '2025-06-01T00:30:00Z')).toEqual(['2025-06-08T00:00:00.000Z']);
    expect(fires('@yearly', '2025-06-01T00:30:00Z')).toEqual(['2026-01-01T00:00:00.000Z']);
    expect(fires('0 0 29 2 *', '2025-06-01T00:00:00Z', 2)).toEqual([
      '2028-02-29T00:00:00.000Z',
      '2032-02-29T00:00:00.000Z',
    ]);
    expect(fires('0 0 30 2 *', '2025-06-01T00:00:00Z')).toEqual([null]);
  });

  it.each([
    ['', /5 fields/],
    ['* * * *', /5 fields/],
    ['* * * * * * *', /5 fields/],
    ['60 * * * *', /minute: 60 is outside 0-59/],
    ['* 24 * * *', /hour: 24/],
    ['* * 0 * *', /day-of-month: 0/],
    ['* * * 13 *', /month: 13/],
    ['* * * foo *', /month: "foo"/],
    ['* * * * 8', /day-of-week: 8/],
    ['*/0 * * * *', /minute: step "0"/],
    ['5-1 * * * *', /runs backwards/],
    ['1-2-3 * * * *', /not a range/],
    ['1/2/3 * * * *', /not a value, range or step/],
    [', * * * *', /not a value/],
    ['@often', /unknown macro/],
    ['61 * * * * *', /second: 61/],
  ])('refuses %j', (expr, message) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(() => parseCron(expr)).toThrow(message);
  });
});

describe('cron in a time zone', () => {
  it('fires at the local time of the zone', () => {
    expect(fires('0 9 * * *', '2025-06-01T00:30:00Z', 1, 'Asia/Tokyo')).toEqual(['2025-06-02T00:00:00.000Z']);
    expect(fires('0 9 * * *', '2025-01-15T00:00:00Z', 1, 'America/New_York')).toEqual(['2025-01-15T14:00:00.000Z']);
    expect(fires('0 9 * * *', '2025-07-15T00:00:00Z', 1, 'America/New_York')).toEqual(['2025-07-15T13:00:00.000Z']);
    expect(fires('30 0 * * *', '2025-06-01T00:00:00Z', 1, 'Asia/Kolkata')).toEqual(['2025-06-01T19:00:00.000Z']);
  });

  it('fires a skipped local time (clocks forward) at the next valid time, once', () => {
    // New York, 2025-03-09: 02:00 EST → 03:00 EDT (07:00 UTC).
    expect(fires('30 2 * * *', '2025-03-09T06:00:00Z', 2, 'America/New_York')).toEqual([
      '2025-03-09T07:00:00.000Z',
      '2025-03-10T06:30:00.000Z',
    ]);
    // Every 15 minutes: the slots 02:00-02:45 all map to 03:00, which fires once.
    expect(fires('*/15 * * * *', '2025-03-09T06:40:00Z', 3, 'America/New_York')).toEqual([
      '2025-03-09T06:45:00.000Z',
      '2025-03-09T07:00:00.000Z',
      '2025-03-09T07:15:00.000Z',
    ]);
  });

  it('fires a repeated local time (clocks back) once, at its first occurrence', () => {
    // New York, 2025-11-02: 02:00 EDT → 01:00 EST (06:00 UTC); 01:30 happens twice.
    expect(fires('30 1 * * *', '2025-11-02T04:00:00Z', 2, 'America/New_York')).toEqual([
      '2025-11-02T05:30:00.000Z',
      '2025-11-03T06:30:00.000Z',
    ]);
    expect(fires('*/30 * * * *', '2025-11-02T05:10:00Z', 3, 'America/New_York')).toEqual([
      '2025-11-02T05:30:00.000Z',
      '2025-11-02T07:00:00.000Z',
      '2025-11-02T07:30:00.000Z',
    ]);
    // Every second through the repeated hour: found without running out of search.
    expect(fires('* * * * * *', '2025-11-02T06:00:05Z', 1, 'America/New_York')).toEqual(['2025-11-02T07:00:00.000Z']);
  });

  it('maps wall times and names zones through Intl', () => {
    expect(canonicalTimeZone('utc')).toBe('UTC');
    expect(canonicalTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('Mars/Olympus')).toBeUndefined();
    const wall = Date.UTC(2025, 2, 30, 2, 30); // Berlin skips 02:00-03:00 on 2025-03-30
    expect(new Date(wallToInstant(wall, 'Europe/Berlin')).toISOString()).toBe('2025-03-30T01:00:00.000Z');
    expect(new Date(toWall(Date.parse('2025-03-30T01:00:00Z'), 'Europe/Berlin')).toISOString()).toBe(
      '2025-03-30T03:00:00.000Z',
    );
  });
});
