import { get, query } from './api.js';
import { barChart, legend, type Series } from './chart.js';
import { fill, h, inFrame, ms, throttle } from './dom.js';
import type { Counts } from './live.js';
import { STATES, type View } from './view.js';

interface Statistics {
  performance_metrics: { avg_processing_time: number; tasks_per_hour: number };
  time_series: { timestamp: string; completed: number; failed: number; cancelled: number }[];
}

interface TaskTimes {
  created_at: string;
  run_at: string | null;
  dispatched_at: string | null;
}

const percentile = (sorted: number[], p: number): number | null =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;

/** Counts per state (live), the last hour's throughput and failure rate, and pickup latency. */
export class OverviewView implements View {
  readonly id = 'overview';
  readonly title = 'Overview';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-overview' });
  private readonly countEls = new Map<string, HTMLElement>();
  private readonly totalEl = h('span', { 'data-testid': 'count-total' }, '…');
  private readonly rates = h('dl', { class: 'facts' });
  private readonly chart = h('div', { class: 'chart-box' });
  /** Finished tasks move the chart: redrawn from the API at most every 5 s. */
  private readonly refreshChart = throttle(() => this.loadChart(), 5000);

  constructor() {
    const cards = h('div', { class: 'counts' });
    for (const state of STATES) {
      const value = h('span', { class: 'count-value', 'data-testid': `count-${state}` }, '…');
      this.countEls.set(state, value);
      cards.append(
        h('div', { class: `count s-${state}` }, h('span', { class: 'count-label' }, state.replace('_', ' ')), value),
      );
    }
    fill(
      this.root,
      h('h2', { id: 'h-overview' }, 'Overview'),
      h('p', { class: 'muted' }, 'Tasks in all: ', this.totalEl),
      cards,
      h('h3', {}, 'Last hour'),
      this.rates,
      this.chart,
    );
  }

  counts(counts: Counts): void {
    inFrame('overview-counts', () => {
      let total = 0;
      for (const state of STATES) {
        const n = counts[state] ?? 0;
        total += n;
        const el = this.countEls.get(state);
        if (el && el.textContent !== String(n)) el.textContent = String(n);
      }
      this.totalEl.textContent = String(total);
    });
  }

  task(type: string): void {
    if (type === 'task_completed' || type === 'task_failed' || type === 'task_cancelled') this.refreshChart();
  }

  async refresh(): Promise<void> {
    await this.loadChart();
  }

  private async loadChart(): Promise<void> {
    const [stats, recent] = await Promise.all([
      get<Statistics>(`/api/v1/statistics${query({ period: '1h', interval: 'minute' })}`),
      get<{ tasks: TaskTimes[] }>(`/api/v1/tasks${query({ sort: 'started_at', order: 'desc', limit: 100 })}`),
    ]);
    const series = stats.time_series;
    const completed = series.reduce((a, p) => a + p.completed, 0);
    const failed = series.reduce((a, p) => a + p.failed, 0);
    // Pickup: from ready (run_at, or created) to handed out, over the last 100 tasks started.
    const pickups = recent.tasks
      .filter((t) => t.dispatched_at)
      .map((t) => new Date(t.dispatched_at as string).getTime() - new Date(t.run_at ?? t.created_at).getTime())
      .map((d) => Math.max(0, d))
      .sort((a, b) => a - b);
    const bars: Series[] = [
      { name: 'completed', className: 'bar-ok', values: series.map((p) => p.completed) },
      { name: 'failed', className: 'bar-bad', values: series.map((p) => p.failed) },
      { name: 'cancelled', className: 'bar-muted', values: series.map((p) => p.cancelled) },
    ];
    const labels = series.map((p) =>
      new Date(p.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
    );
    inFrame('overview-chart', () => {
      fill(
        this.rates,
        h('dt', {}, 'Throughput'),
        h('dd', { 'data-testid': 'throughput' }, `${completed} completed (${(completed / 60).toFixed(1)}/min)`),
        h('dt', {}, 'Failure rate'),
        h(
          'dd',
          { 'data-testid': 'failure-rate' },
          completed + failed ? `${((failed / (completed + failed)) * 100).toFixed(1)}%` : '—',
        ),
        h('dt', {}, 'Pickup latency'),
        h(
          'dd',
          { 'data-testid': 'pickup' },
          `p50 ${ms(percentile(pickups, 0.5))}, p95 ${ms(percentile(pickups, 0.95))} (last ${pickups.length} started)`,
        ),
        h('dt', {}, 'Mean run time'),
        h('dd', {}, ms(stats.performance_metrics.avg_processing_time)),
      );
      fill(this.chart, barChart('Tasks finished per minute, last hour', labels, bars), legend(bars));
    });
  }
}
