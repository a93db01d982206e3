/**
 * Wall-clock time in an IANA time zone, through Intl only (no tz database of our own).
 * A "wall" value is a Date whose UTC fields are the local fields (a zone-free calendar):
 * arithmetic on it never meets a DST change, which is what cron fields need.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's canonical name (`utc` → `UTC`), or undefined when Intl does not know it. */
export function canonicalTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

const isUtc = (tz: string): boolean => tz === 'UTC' || tz === 'Etc/UTC';

/** The local fields of `instant` (whole seconds) as a wall value. */
export function toWall(instantMs: number, timeZone: string): number {
  const s = Math.floor(instantMs / 1000) * 1000;
  if (isUtc(timeZone)) return s;
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(s)))
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour === 24 ? 0 : p.hour, p.minute, p.second);
}

/** Local minus UTC at `instant`, in ms. */
const offsetAt = (instantMs: number, timeZone: string): number =>
  toWall(instantMs, timeZone) - Math.floor(instantMs / 1000) * 1000;

const DAY = 86_400_000;

/**
 * The instant a wall time names. A repeated wall time (clocks set back) is its first
 * occurrence; a skipped one (clocks set forward) is the moment the clocks jumped, i.e. the
 * next valid time (02:30 on a spring-forward night → 03:00).
 */
export function wallToInstant(wall: number, timeZone: string): number {
  if (isUtc(timeZone)) return wall;
  const offsets = [...new Set([offsetAt(wall - DAY, timeZone), offsetAt(wall + DAY, timeZone)])];
  const found = offsets.map((o) => wall - o).filter((t) => offsetAt(t, timeZone) === wall - t);
  if (found.length) return Math.min(...found);
  // In a gap: under the earlier (smaller) offset the instant is already past the change, under
  // the later one not yet there. Search the second the offset changed.
  let lo = wall - Math.max(...offsets); // before the change
  let hi = wall - Math.min(...offsets); // after it
  const after = offsetAt(hi, timeZone);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(mid, timeZone) === after) hi = mid;
    else lo = mid;
  }
  return hi;
}
