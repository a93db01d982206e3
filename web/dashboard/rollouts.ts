import { get, post } from './api.js';
import { confirmButton } from './confirm.js';
import { ago, badge, fill, h, inFrame, throttle } from './dom.js';
import type { View } from './view.js';

interface Counts {
  queued: number;
  pending: number;
  dispatched: number;
  running: number;
  completed: number;
  failed: number;
  timed_out: number;
  cancelled: number;
  rejected: number;
}
interface Rollout {
  rollout_id: string;
  name: string;
  status: string;
  total: number;
  released: number;
  current_per_minute: number;
  counts: Counts;
  reason: string | null;
  created_at: string;
}

/** The bar's segments, left to right: finished first (good, then bad), then what is under way. */
const SEGMENTS: { key: keyof Counts; label: string; cls: string }[] = [
  { key: 'completed', label: 'completed', cls: 'seg-ok' },
  { key: 'failed', label: 'failed', cls: 'seg-bad' },
  { key: 'timed_out', label: 'timed out', cls: 'seg-bad' },
  { key: 'rejected', label: 'rejected', cls: 'seg-bad' },
  { key: 'cancelled', label: 'cancelled', cls: 'seg-muted' },
  { key: 'running', label: 'running', cls: 'seg-info' },
  { key: 'dispatched', label: 'dispatched', cls: 'seg-info' },
  { key: 'pending', label: 'pending', cls: 'seg-info' },
];
const FINISHED: (keyof Counts)[] = ['completed', 'failed', 'timed_out', 'rejected', 'cancelled'];

/** A stacked bar of a rollout's nodes by outcome: its width is the share of the targeted nodes. */
function progress(r: Rollout): HTMLElement {
  const total = Math.max(r.total, 1);
  const finished = FINISHED.reduce((n, k) => n + r.counts[k], 0);
  const track = h('span', { class: 'progress-track' });
  for (const s of SEGMENTS) {
    const n = r.counts[s.key];
    if (!n) continue;
    const seg = h('span', { class: `progress-seg ${s.cls}`, title: `${n} ${s.label}` });
    seg.style.width = `${(n * 100) / total}%`;
    track.append(seg);
  }
  const text = SEGMENTS.filter((s) => r.counts[s.key] > 0)
    .map((s) => `${r.counts[s.key]} ${s.label}`)
    .concat(r.counts.queued ? [`${r.counts.queued} queued`] : [])
    .join(', ');
  return h(
    'span',
    {
      class: 'progress',
      role: 'progressbar',
      'aria-label': `progress of ${r.name}`,
      'aria-valuenow': finished,
      'aria-valuemin': 0,
      'aria-valuemax': r.total,
      'data-testid': `rollout-progress-${r.rollout_id}`,
    },
    track,
    h('span', { class: 'meter-text' }, `${finished} / ${r.total}`),
    h('small', { class: 'muted progress-detail' }, text || 'nothing released yet'),
  );
}

/** Rollouts (issue 29): each with its status, a progress bar of its nodes' outcomes, rate, and cancel. */
export class RolloutsView implements View {
  readonly id = 'rollouts';
  readonly title = 'Rollouts';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-rollouts' });
  private readonly body = h('tbody', {});
  private readonly summary = h('p', { class: 'muted', role: 'status' });
  /** Rollout tasks ending move the bars: redrawn at most every second. */
  private readonly reload = throttle(() => this.load(), 1000);

  constructor() {
    fill(
      this.root,
      h('h2', { id: 'h-rollouts' }, 'Rollouts'),
      this.summary,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { 'data-testid': 'rollout-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Rollout', 'Status', 'Progress', 'Rate', 'Started', ''].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          this.body,
        ),
      ),
    );
  }

  refresh(): Promise<void> {
    return this.load();
  }

  task(type: string): void {
    if (type !== 'task_progress') this.reload();
  }

  private async load(): Promise<void> {
    const { rollouts, pagination } = await get<{ rollouts: Rollout[]; pagination: { total: number } }>(
      '/api/v1/rollouts?limit=50',
    );
    inFrame('rollouts', () => {
      const active = rollouts.filter((r) => r.status === 'in_progress').length;
      fill(this.summary, `${active} in progress of ${pagination.total}`);
      const rows = rollouts.map((r) =>
        h(
          'tr',
          { 'data-testid': `rollout-${r.rollout_id}` },
          h('td', {}, h('strong', {}, r.name), h('br', {}), h('small', { class: 'muted' }, r.rollout_id)),
          h(
            'td',
            { 'data-testid': `rollout-status-${r.rollout_id}`, title: r.reason ?? '' },
            badge(r.status),
            r.reason ? h('br', {}) : null,
            r.reason ? h('small', { class: 'muted' }, r.reason) : null,
          ),
          h('td', {}, progress(r)),
          h('td', {}, r.status === 'in_progress' ? `${Math.round(r.current_per_minute)}/min` : '—'),
          h('td', { title: r.created_at }, ago(r.created_at)),
          h(
            'td',
            {},
            r.status === 'in_progress'
              ? confirmButton('Cancel', 'Stop releasing and cancel its open tasks?', () => this.cancel(r), {
                  testid: `cancel-rollout-${r.rollout_id}`,
                  danger: true,
                })
              : null,
          ),
        ),
      );
      fill(
        this.body,
        ...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No rollouts yet'))]),
      );
    });
  }

  private async cancel(r: Rollout): Promise<void> {
    await post(`/api/v1/rollouts/${r.rollout_id}/cancel`, { reason: 'cancelled from the dashboard' });
    await this.load();
  }
}
