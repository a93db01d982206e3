import { get, post } from './api.js';
import { confirmButton } from './confirm.js';
import { ago, badge, fill, h, inFrame, time } from './dom.js';
import type { Context, View } from './view.js';

interface Service {
  service_id: string;
  name: string;
  kind: string;
  status: string;
  endpoint: string;
  restart_count: number;
  last_error: string | null;
  started_at: string | null;
  health?: { status?: string; last_check?: string | null };
  stats: { active_sessions: number; total_sessions: number; active_connections: number; uptime_seconds: number };
}

interface Check {
  status: string;
  response_time_ms: number | null;
  message: string | null;
  checked_at: string;
}

interface LogEntry {
  timestamp?: string;
  level?: string;
  message?: string;
  stream?: string;
}

/** Agent services: status, health history, sessions, lifecycle buttons, recent log lines. */
export class ServicesView implements View {
  readonly id = 'services';
  readonly title = 'Agent services';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-services' });
  private readonly list = h('div', { class: 'cards' });

  constructor(private readonly ctx: Context) {
    fill(this.root, h('h2', { id: 'h-services' }, 'Agent services'), this.list);
  }

  async refresh(): Promise<void> {
    const { services } = await get<{ services: Service[] }>('/api/v1/services?limit=100');
    const details = await Promise.all(
      services.map(async (s) => {
        const [history, logs] = await Promise.all([
          get<{ history: Check[] }>(
            `/api/v1/health/services/${encodeURIComponent(s.service_id)}/history?limit=30`,
          ).catch(() => ({ history: [] })),
          get<{ logs: LogEntry[] }>(`/api/v1/logs/services/${encodeURIComponent(s.service_id)}?limit=10`).catch(() => ({
            logs: [],
          })),
        ]);
        return { s, history: history.history, logs: logs.logs };
      }),
    );
    inFrame('services', () =>
      fill(
        this.list,
        ...(details.length
          ? details.map((d) => this.card(d.s, d.history, d.logs))
          : [h('p', { class: 'muted' }, 'No agent services registered')]),
      ),
    );
  }

  private card(s: Service, history: Check[], logs: LogEntry[]): HTMLElement {
    const lifecycle = this.ctx.admin
      ? h(
          'div',
          { class: 'actions' },
          ...(['start', 'stop', 'restart'] as const).map((op) =>
            confirmButton(
              op[0].toUpperCase() + op.slice(1),
              `${op} ${s.name}?`,
              async () => {
                await post(`/api/v1/services/${encodeURIComponent(s.service_id)}/${op}`);
                await this.refresh();
              },
              { testid: `${op}-${s.service_id}`, danger: op !== 'start' },
            ),
          ),
        )
      : null;
    const dots = h(
      'ol',
      { class: 'health-dots', 'aria-label': 'Health checks, oldest first' },
      ...history
        .slice()
        .reverse()
        .map((c) =>
          h(
            'li',
            {
              class: `dot s-${c.status}`,
              title: `${time(c.checked_at)}: ${c.status}${c.message ? ` (${c.message})` : ''}`,
            },
            c.status,
          ),
        ),
    );
    return h(
      'article',
      { class: 'card', 'data-testid': `service-${s.service_id}` },
      h('h3', {}, s.name, ' ', badge(s.status)),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Health'),
        h('dd', {}, s.health?.status ?? '—', ' ', s.health?.last_check ? `(${ago(s.health.last_check)})` : ''),
        h('dt', {}, 'Sessions'),
        h('dd', {}, `${s.stats.active_sessions} active, ${s.stats.total_sessions} total`),
        h('dt', {}, 'Connections'),
        h('dd', {}, String(s.stats.active_connections)),
        h('dt', {}, 'Endpoint'),
        h('dd', {}, s.endpoint),
        h('dt', {}, 'Restarts'),
        h('dd', {}, `${s.restart_count}${s.last_error ? `, last error: ${s.last_error}` : ''}`),
      ),
      lifecycle,
      h('h4', {}, 'Health history'),
      history.length ? dots : h('p', { class: 'muted' }, 'No checks yet'),
      h('h4', {}, 'Recent log lines'),
      logs.length
        ? h(
            'ol',
            { class: 'log' },
            ...logs.map((l) =>
              h(
                'li',
                { class: `lvl-${l.level ?? 'info'}` },
                l.timestamp ? `${time(l.timestamp)} ` : '',
                l.message ?? JSON.stringify(l),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No log lines'),
    );
  }
}
