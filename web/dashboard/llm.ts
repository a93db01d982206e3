import { ApiError, get, post, query } from './api.js';
import { barChart, legend, type Series } from './chart.js';
import { confirmButton } from './confirm.js';
import { ago, fill, h, inFrame, meter } from './dom.js';
import type { Context, View } from './view.js';

interface UsageRow {
  bucket: string;
  key_id: string | null;
  model: string;
  calls: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
}

interface Status {
  deployments: {
    provider: string;
    model: string;
    in_flight: number;
    max_concurrency: number | null;
    cooldown_until: string | null;
    calls_last_minute: number;
    errors_last_minute: number;
  }[];
  running: { request_id: string; model: string; key_id: string | null; node_id: string | null; started_at: string }[];
}

interface Key {
  id: string;
  name: string;
  revoked_at: string | null;
  limits: { rpm?: number; tpm?: number; max_parallel?: number } | null;
}

/** GET /v1/tools: what chats may call, and the nodes that run each. */
interface Tools {
  data: {
    function: { name: string; description?: string };
    plugin: string | null;
    nodes: { node_id: string; name: string | null }[];
  }[];
}

const MINUTE = 60_000;

/** LLM gateway: calls and tokens per minute, errors and cooldowns, key quotas, running requests. */
export class LlmView implements View {
  readonly id = 'llm';
  readonly title = 'LLM gateway';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-llm' });
  private readonly charts = h('div', { class: 'chart-box' });
  private readonly providers = h('div', {});
  private readonly quotas = h('div', {});
  private readonly running = h('div', {});
  private readonly tools = h('div', {});

  constructor(private readonly ctx: Context) {
    fill(
      this.root,
      h('h2', { id: 'h-llm' }, 'LLM gateway'),
      this.charts,
      h('h3', {}, 'Providers'),
      this.providers,
      h('h3', {}, 'Key quotas (this minute)'),
      this.quotas,
      h('h3', {}, 'Running requests'),
      this.running,
      h('h3', {}, 'Tools the hub runs on nodes'),
      this.tools,
    );
  }

  async refresh(): Promise<void> {
    const now = Date.now();
    const since = new Date(Math.floor(now / MINUTE) * MINUTE - 59 * MINUTE).toISOString();
    const usage = await get<{ rows: UsageRow[] }>(`/api/v1/llm/usage${query({ interval: 'minute', since })}`);
    const status = this.ctx.admin ? await get<Status>('/api/v1/llm/status').catch(forbiddenAsNull) : null;
    const keys = this.ctx.admin ? await get<Key[]>('/api/v1/api-keys').catch(forbiddenAsNull) : null;
    const tools = await get<Tools>('/v1/tools');
    inFrame('llm', () => {
      this.render(now, usage.rows, status, keys);
      this.renderTools(tools);
    });
  }

  private render(now: number, rows: UsageRow[], status: Status | null, keys: Key[] | null): void {
    const start = Math.floor(now / MINUTE) * MINUTE - 59 * MINUTE;
    const calls = new Array<number>(60).fill(0);
    const errors = new Array<number>(60).fill(0);
    const tokens = new Array<number>(60).fill(0);
    const byModel = new Map<string, { calls: number; errors: number }>();
    for (const r of rows) {
      const i = Math.floor((new Date(r.bucket).getTime() - start) / MINUTE);
      if (i >= 0 && i < 60) {
        calls[i] += r.calls - r.errors;
        errors[i] += r.errors;
        tokens[i] += r.prompt_tokens + r.completion_tokens;
      }
      const m = byModel.get(r.model) ?? { calls: 0, errors: 0 };
      m.calls += r.calls;
      m.errors += r.errors;
      byModel.set(r.model, m);
    }
    const labels = calls.map((_, i) =>
      new Date(start + i * MINUTE).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
    );
    const callSeries: Series[] = [
      { name: 'calls', className: 'bar-ok', values: calls },
      { name: 'errors', className: 'bar-bad', values: errors },
    ];
    const tokenSeries: Series[] = [{ name: 'tokens', className: 'bar-info', values: tokens }];
    fill(
      this.charts,
      h('h3', {}, 'Calls per minute'),
      barChart('LLM calls per minute, last hour', labels, callSeries),
      legend(callSeries),
      h('h3', {}, 'Tokens per minute'),
      barChart('LLM tokens per minute, last hour', labels, tokenSeries),
    );

    const modelRows = [...byModel.entries()].map(([model, m]) =>
      h('tr', {}, h('td', {}, model), h('td', {}, String(m.calls)), h('td', {}, String(m.errors))),
    );
    const deploymentRows = (status?.deployments ?? []).map((d) =>
      h(
        'tr',
        {},
        h('td', {}, d.provider),
        h('td', {}, d.model),
        h('td', {}, meter(d.in_flight, d.max_concurrency, `${d.provider} in flight`)),
        h('td', {}, `${d.errors_last_minute} / ${d.calls_last_minute}`),
        h(
          'td',
          { class: d.cooldown_until ? 'bad' : '' },
          d.cooldown_until ? `cooling until ${new Date(d.cooldown_until).toLocaleTimeString()}` : 'open',
        ),
      ),
    );
    fill(
      this.providers,
      table(['Model', 'Calls (1 h)', 'Errors (1 h)'], modelRows, 'No calls in the last hour'),
      status
        ? table(
            ['Provider', 'Model', 'In flight', 'Errors / calls (1 min)', 'Cooldown'],
            deploymentRows,
            'No providers configured',
          )
        : h('p', { class: 'muted' }, 'Cooldowns need an admin key.'),
    );

    if (keys) {
      const thisMinute = rows.filter((r) => new Date(r.bucket).getTime() >= Math.floor(now / MINUTE) * MINUTE);
      const limited = keys.filter((k) => !k.revoked_at && k.limits && (k.limits.rpm || k.limits.tpm));
      fill(
        this.quotas,
        table(
          ['Key', 'Requests / min', 'Tokens / min'],
          limited.map((k) => {
            const mine = thisMinute.filter((r) => r.key_id === k.id);
            const used = mine.reduce((a, r) => a + r.calls, 0);
            const tok = mine.reduce((a, r) => a + r.prompt_tokens + r.completion_tokens, 0);
            return h(
              'tr',
              {},
              h('td', {}, k.name),
              h('td', {}, meter(used, k.limits?.rpm, `${k.name} requests`)),
              h('td', {}, meter(tok, k.limits?.tpm, `${k.name} tokens`)),
            );
          }),
          'No key has LLM limits',
        ),
      );
    } else fill(this.quotas, h('p', { class: 'muted' }, 'Quotas need an admin key.'));

    if (status) {
      fill(
        this.running,
        table(
          ['Request', 'Model', 'Key', 'Started', ''],
          status.running.map((r) =>
            h(
              'tr',
              {},
              h('td', {}, h('code', {}, r.request_id)),
              h('td', {}, r.model),
              h('td', {}, keys?.find((k) => k.id === r.key_id)?.name ?? r.key_id ?? r.node_id ?? '—'),
              h('td', {}, ago(r.started_at)),
              h(
                'td',
                {},
                confirmButton(
                  'Interrupt',
                  'Stop this request?',
                  async () => {
                    await post('/v1/interrupt', { request_id: r.request_id });
                    await this.refresh();
                  },
                  { danger: true, testid: `interrupt-${r.request_id}` },
                ),
              ),
            ),
          ),
          'Nothing running',
        ),
      );
    } else fill(this.running, h('p', { class: 'muted' }, 'Running requests need an admin key.'));
  }

  private renderTools(tools: Tools): void {
    fill(
      this.tools,
      table(
        ['Tool', 'Description', 'Plugin', 'Nodes'],
        tools.data.map((t) =>
          h(
            'tr',
            { 'data-testid': `tool-${t.function.name}` },
            h('td', {}, h('code', {}, t.function.name)),
            h('td', {}, t.function.description ?? ''),
            h('td', {}, t.plugin ?? '—'),
            h(
              'td',
              { 'data-testid': `tool-nodes-${t.function.name}`, class: t.nodes.length === 0 ? 'bad' : '' },
              t.nodes.length === 0 ? 'no node connected' : t.nodes.map((n) => n.name ?? n.node_id).join(', '),
            ),
          ),
        ),
        'No node or plugin offers a tool',
      ),
    );
  }
}

function forbiddenAsNull(e: unknown): null {
  if (e instanceof ApiError && e.status === 403) return null;
  throw e;
}

function table(columns: string[], rows: HTMLElement[], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows),
    ),
  );
}
