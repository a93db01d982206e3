/** Stacked bars in inline SVG: one bar per time bucket, one colour per series. */

const NS = 'http://www.w3.org/2000/svg';

export interface Series {
  name: string;
  className: string;
  values: number[];
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function barChart(title: string, labels: string[], series: Series[]): SVGSVGElement {
  const width = 600;
  const height = 160;
  const pad = { left: 36, right: 8, top: 8, bottom: 20 };
  const n = labels.length;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = n ? plotW / n : plotW;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': `${title}: peak ${max} per bucket`,
  });
  const t = svg('title', {});
  t.textContent = title;
  root.append(t);
  for (const frac of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - frac);
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    const label = svg('text', { x: pad.left - 4, y: y + 4, class: 'axis', 'text-anchor': 'end' });
    label.textContent = String(Math.round(max * frac));
    root.append(label);
  }
  for (let i = 0; i < n; i++) {
    let y = pad.top + plotH;
    for (const s of series) {
      const v = s.values[i] ?? 0;
      if (!v) continue;
      const bh = (v / max) * plotH;
      y -= bh;
      const rect = svg('rect', {
        x: pad.left + i * step + step * 0.1,
        y,
        width: Math.max(1, step * 0.8),
        height: bh,
        class: s.className,
      });
      const tip = svg('title', {});
      tip.textContent = `${labels[i]}: ${v} ${s.name}`;
      rect.append(tip);
      root.append(rect);
    }
  }
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    if (i < 0 || i >= n) continue;
    const anchor = i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle';
    const x = i === 0 ? pad.left : i === n - 1 ? width - pad.right : pad.left + i * step + step / 2;
    const label = svg('text', { x, y: height - 4, class: 'axis', 'text-anchor': anchor });
    label.textContent = labels[i];
    root.append(label);
  }
  return root;
}

export function legend(series: Series[]): HTMLElement {
  const el = document.createElement('p');
  el.className = 'legend';
  for (const s of series) {
    const key = document.createElement('span');
    key.className = `key ${s.className}`;
    el.append(key, ` ${s.name} `);
  }
  return el;
}
