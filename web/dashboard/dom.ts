/** Small DOM helpers: elements from data (text is always textContent, never HTML). */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | null | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 0) return 'now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function time(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !isFinite(n)) return '—';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`;
}

export function json(value: unknown): string {
  return value === null || value === undefined ? '—' : JSON.stringify(value, null, 2);
}

/** A bar showing used against a limit (null limit: just the number). */
export function meter(used: number, limit: number | null | undefined, label: string): HTMLElement {
  const bar = h('span', { class: 'meter-fill' });
  const ratio = limit ? Math.min(1, used / limit) : 0;
  bar.style.width = `${Math.round(ratio * 100)}%`;
  if (ratio >= 0.9) bar.classList.add('hot');
  return h(
    'span',
    { class: 'meter', role: 'meter', 'aria-label': label, 'aria-valuenow': used, 'aria-valuemax': limit ?? undefined },
    h('span', { class: 'meter-track' }, bar),
    h('span', { class: 'meter-text' }, limit ? `${used} / ${limit}` : String(used)),
  );
}

export function badge(text: string): HTMLElement {
  return h('span', { class: `badge s-${text.replace(/[^a-z_]/gi, '')}` }, text);
}

const pending = new Map<string, () => void>();
let frame = 0;

/**
 * Runs `fn` at the next animation frame; a later call with the same key replaces it. However
 * many events arrive, each part of the page is redrawn at most once per frame.
 */
export function inFrame(key: string, fn: () => void): void {
  pending.set(key, fn);
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const work = [...pending.values()];
    pending.clear();
    for (const w of work) w();
  });
}

/**
 * Calls `fn` at most once per `intervalMs`, and once more after the last call (trailing), never
 * two at a time: a burst of events turns into a few refreshes, and the last one sees the end state.
 */
export function throttle(fn: () => Promise<void>, intervalMs: number): () => void {
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    timer = undefined;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await fn();
    } catch (e) {
      console.warn('refresh failed', e);
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (timer) return;
    timer = setTimeout(() => void run(), Math.max(0, last + intervalMs - Date.now()));
  };
  return schedule;
}
