/**
 * A seed 004 timestamp, `2025-09-17T14:30:00`: written as the document writes them, which is
 * what its Python server sends (`datetime.now().isoformat()`): the hub's local time (the
 * process's `TZ`; UTC in the container image unless `TZ` is set), whole seconds, no zone. Its
 * Python clients parse it with `datetime.fromisoformat`, which before 3.11 refuses the `Z` of
 * `toISOString()`; and a value with an offset would be aware, so `datetime.now() - value` in
 * such a client would raise. Only the seed 004 surfaces use it; everything else keeps ISO 8601
 * in UTC with `Z` (docs/compatibility.md).
 */
export function seed004Time(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${String(d.getFullYear()).padStart(4, '0')}-${p(d.getMonth() + 1)}-${p(d.getDate())}` +
    `T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  );
}
