import { post, get } from './api.js';
import { confirmButton } from './confirm.js';
import { ago, badge, fill, h, inFrame, meter, throttle } from './dom.js';
import type { Context, View } from './view.js';

interface Node {
  node_id: string;
  name: string | null;
  kind: string;
  status: string;
  capacity: number;
  running: number;
  tags: string[];
  /** It serves every tenant (docs/flow-control.md, "Fairness"). */
  shared: boolean;
  last_heartbeat_at: string | null;
  connected_at: string | null;
  transport: string | null;
  resources: Record<string, unknown> | null;
}

function resources(r: Record<string, unknown> | null): string {
  if (!r) return '—';
  return Object.entries(r)
    .slice(0, 4)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

/** Devices and nodes: status, load against capacity, heartbeat, resources, transport, drain. */
export class NodesView implements View {
  readonly id = 'nodes';
  readonly title = 'Nodes';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-nodes' });
  private readonly body = h('tbody', {});
  private readonly summary = h('p', { class: 'muted', role: 'status' });
  /** Node events and task hand-outs change what is shown: redrawn at most every second. */
  private readonly reload = throttle(() => this.load(), 1000);

  constructor(private readonly ctx: Context) {
    fill(
      this.root,
      h('h2', { id: 'h-nodes' }, 'Nodes'),
      this.summary,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { 'data-testid': 'node-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Node', 'Status', 'Load', 'Last heartbeat', 'Resources', 'Transport', ''].map((c) =>
                h('th', { scope: 'col' }, c),
              ),
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

  node(): void {
    this.reload();
  }

  task(type: string): void {
    if (type !== 'task_progress' && type !== 'task_created') this.reload();
  }

  private async load(): Promise<void> {
    const { nodes, pagination } = await get<{ nodes: Node[]; pagination: { total: number } }>(
      '/api/v1/nodes?limit=200',
    );
    inFrame('nodes', () => {
      const online = nodes.filter((n) => n.status !== 'offline').length;
      fill(this.summary, `${online} connected of ${pagination.total}`);
      const rows = nodes.map((n) => {
        const action = !this.ctx.admin
          ? null
          : n.status === 'draining'
            ? confirmButton('Undrain', 'Give it tasks again?', () => this.act(n, 'undrain'), {
                testid: `undrain-${n.node_id}`,
              })
            : confirmButton('Drain', 'Stop giving it new tasks?', () => this.act(n, 'drain'), {
                testid: `drain-${n.node_id}`,
              });
        return h(
          'tr',
          { 'data-testid': `node-${n.node_id}` },
          h(
            'td',
            {},
            h('strong', {}, n.name ?? n.node_id),
            h('br', {}),
            h('small', { class: 'muted' }, `${n.kind} ${n.node_id}`),
            n.shared
              ? h(
                  'span',
                  { class: 'badge', 'data-testid': `node-shared-${n.node_id}`, title: "Serves every tenant's tasks" },
                  'shared',
                )
              : null,
          ),
          h('td', { 'data-testid': `node-status-${n.node_id}` }, badge(n.status)),
          h('td', {}, meter(n.running, n.capacity, `load of ${n.node_id}`)),
          h('td', { title: n.last_heartbeat_at ?? '' }, ago(n.last_heartbeat_at)),
          h('td', { class: 'small' }, resources(n.resources)),
          h('td', {}, n.transport ?? '—'),
          h('td', {}, action),
        );
      });
      fill(this.body, ...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No nodes yet'))]));
    });
  }

  private async act(n: Node, what: 'drain' | 'undrain'): Promise<void> {
    await post(`/api/v1/nodes/${encodeURIComponent(n.node_id)}/${what}`);
    await this.load();
  }
}
