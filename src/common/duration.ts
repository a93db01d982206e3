const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DURATION = /^(\d{1,9})(s|m|h|d|w)?$/;

/**
 * A retention length as settings write it: `90s`, `30m`, `12h`, `7d`, `2w`, or a bare number of
 * seconds; `0` and `off` mean no bound. Answers seconds (0: no bound), or undefined when `value`
 * is not one.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const v = value.trim().toLowerCase();
  if (v === 'off') return 0;
  const m = DURATION.exec(v);
  return m ? Number(m[1]) * UNIT_SECONDS[m[2] ?? 's'] : undefined;
}
