import { toWall, wallToInstant } from './zoned-time.js';

/**
 * Cron expressions (docs/schedules.md): five fields `minute hour day-of-month month
 * day-of-week`, or six with leading seconds; each field `*`, a value, a range `a-b`, a step
 * `*\/n` `a-b/n` `a/n`, or a list of those; months `jan`–`dec` and days `sun`–`sat` by name
 * (day 7 is Sunday too); `@yearly` `@monthly` `@weekly` `@daily` `@hourly`. As in Vixie cron,
 * when both day fields are restricted a day matching either fires; when one is `*`, the other
 * decides. The resolution is a second, so nothing fires more often than once a second.
 */
export interface CronSpec {
  /** Allowed values per field, indexed by value. */
  second: boolean[];
  minute: boolean[];
  hour: boolean[];
  dayOfMonth: boolean[];
  month: boolean[];
  dayOfWeek: boolean[];
  /** The day field began with `*` (or `?`): it does not restrict, the other day field decides. */
  dayOfMonthStar: boolean;
  dayOfWeekStar: boolean;
}

export class CronError extends Error {}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** The value of the first name (months start at 1). */
  namesFrom?: number;
}

const SECOND: Field = { name: 'second', min: 0, max: 59 };
const FIELDS: Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { name: 'day-of-week', min: 0, max: 7, names: DAYS, namesFrom: 0 },
];

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function value(text: string, f: Field): number {
  const named = f.names?.indexOf(text.toLowerCase()) ?? -1;
  const n = named >= 0 ? named + (f.namesFrom ?? 0) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(n)) throw new CronError(`${f.name}: "${text}" is not a number${f.names ? ' or a name' : ''}`);
  if (n < f.min || n > f.max) throw new CronError(`${f.name}: ${n} is outside ${f.min}-${f.max}`);
  return n;
}

function parseField(text: string, f: Field): boolean[] {
  const allowed = new Array<boolean>(f.max + 1).fill(false);
  for (const part of text.split(',')) {
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === '') throw new CronError(`${f.name}: "${part}" is not a value, range or step`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1 || Number(stepText) > f.max)
        throw new CronError(`${f.name}: step "${stepText}" must be 1-${f.max}`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') [lo, hi] = [f.min, f.max];
    else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined) throw new CronError(`${f.name}: "${range}" is not a range`);
      [lo, hi] = [value(a, f), value(b, f)];
      if (lo > hi) throw new CronError(`${f.name}: range ${range} runs backwards`);
    } else {
      lo = value(range, f);
      hi = stepText === undefined ? lo : f.max; // `a/n`: from a to the end
    }
    for (let v = lo; v <= hi; v += step) allowed[v] = true;
  }
  return allowed;
}

/** Parses an expression; throws CronError saying which field is wrong. */
export function parseCron(expression: string): CronSpec {
  const text = expression.trim();
  const expanded = MACROS[text.toLowerCase()] ?? text;
  if (expanded.startsWith('@')) throw new CronError(`unknown macro ${text}`);
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6)
    throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first`);
  const [secondText, ...rest] = parts.length === 6 ? parts : ['0', ...parts];
  const [minute, hour, dayOfMonth, month, dayOfWeek] = rest.map((p, i) => parseField(p, FIELDS[i]));
  if (dayOfWeek[7]) dayOfWeek[0] = true; // 7 is Sunday
  return {
    second: parseField(secondText, SECOND),
    minute,
    hour,
    dayOfMonth,
    month,
    dayOfWeek: dayOfWeek.slice(0, 7),
    dayOfMonthStar: /^[*?]/.test(rest[2]),
    dayOfWeekStar: /^[*?]/.test(rest[4]),
  };
}

function dayMatches(spec: CronSpec, d: Date): boolean {
  const dom = spec.dayOfMonth[d.getUTCDate()];
  const dow = spec.dayOfWeek[d.getUTCDay()];
  if (spec.dayOfMonthStar || spec.dayOfWeekStar) return dom && dow;
  return dom || dow;
}

/** Far enough for Feb 29 on a given weekday (every 28 years at most); a spec that never matches gives null. */
const SEARCH_YEARS = 30;

/** The first wall time at or after `wall` (a zone-free calendar: see zoned-time.ts) that the spec matches. */
export function nextWall(spec: CronSpec, wall: number): number | null {
  const limit = new Date(wall).getUTCFullYear() + SEARCH_YEARS;
  let d = new Date(Math.ceil(wall / 1000) * 1000);
  while (d.getUTCFullYear() <= limit) {
    const [y, mo, day, h, mi, s] = [
      d.getUTCFullYear(),
      d.getUTCMonth(),
      d.getUTCDate(),
      d.getUTCHours(),
      d.getUTCMinutes(),
      d.getUTCSeconds(),
    ];
    if (!spec.month[mo + 1]) d = new Date(Date.UTC(y, mo + 1, 1));
    else if (!dayMatches(spec, d)) d = new Date(Date.UTC(y, mo, day + 1));
    else if (!spec.hour[h]) d = new Date(Date.UTC(y, mo, day, h + 1));
    else if (!spec.minute[mi]) d = new Date(Date.UTC(y, mo, day, h, mi + 1));
    else if (!spec.second[s]) d = new Date(Date.UTC(y, mo, day, h, mi, s + 1));
    else return d.getTime();
  }
  return null;
}

/**
 * The first fire time strictly after `after`, in `timeZone` (an IANA name Intl knows). Each
 * matching wall time fires once: a skipped one (clocks forward) at the moment the clocks jumped,
 * a repeated one (clocks back) at its first occurrence only. Null: it never fires again.
 */
export function nextFireTime(spec: CronSpec, after: Date, timeZone: string): Date | null {
  const afterMs = after.getTime();
  // Wall arithmetic from the wall time of `after`: a jump forward is walked through, not skipped.
  let wall = toWall(afterMs, timeZone) + 1000;
  // Bounded: after clocks go back, an hour of candidates (3,600 for every-second) has already fired.
  for (let i = 0; i < 10_000; i++) {
    const w = nextWall(spec, wall);
    if (w === null) return null;
    const instant = wallToInstant(w, timeZone);
    if (instant > afterMs) return new Date(instant);
    wall = w + 1000;
  }
  return null;
}
