import { type Command, Option } from 'commander';
import { type ClientOptions, emit, intArg, makeClient, withClientOptions } from '../client-options.js';
import { action, type CliContext } from '../context.js';
import { keyValues, table } from '../format.js';
import type { HubSchemas } from '../../sdk/hub-client.js';

const BASE = '/api/v1/connections';

/** Proxied WebSocket connections as the hub reports them (typed by the contract, openapi.json). */
export type ConnectionView = HubSchemas['ConnectionView'] & { message?: string };
export type ConnectionList = HubSchemas['ConnectionListView'];

interface ListOptions extends ClientOptions {
  service?: string;
  status?: string;
  limit?: number;
}

interface DisconnectOptions extends ClientOptions {
  reason?: string;
  notify: boolean;
}

export function renderConnections(list: ConnectionList): string {
  if (list.connections.length === 0) return `no connections (total ${list.total})`;
  const rows = list.connections.map((c) => [
    c.connection_id,
    c.session_id,
    c.target_service ?? c.target_service_id,
    c.client_ip,
    c.status,
    c.bytes_sent,
    c.bytes_received,
    c.message_count,
    c.connected_at,
  ]);
  const body = table(
    ['ID', 'SESSION', 'SERVICE', 'CLIENT IP', 'STATUS', 'SENT', 'RECEIVED', 'MESSAGES', 'CONNECTED'],
    rows,
  );
  return list.total > rows.length ? `${body}\n${rows.length} of ${list.total} (more: --limit)` : body;
}

export function renderConnection(c: ConnectionView): string {
  return keyValues([
    ['connection_id', c.connection_id],
    ['session_id', c.session_id],
    ['service', c.target_service ?? c.target_service_id],
    ['client_ip', c.client_ip],
    ['status', c.status],
    ['close_reason', c.close_reason ?? undefined],
    ['bytes', `${c.bytes_sent} sent, ${c.bytes_received} received`],
    ['messages', c.message_count],
    ['connected_at', c.connected_at],
    ['closed_at', c.closed_at ?? undefined],
  ]);
}

export function registerConnections(program: Command, ctx: CliContext): void {
  withClientOptions(
    program
      .command('connections')
      .description('proxied WebSocket connections held by the hub, newest first (GET /api/v1/connections)'),
  )
    .option('--service <name>', 'only connections to this service (name or id)')
    .addOption(new Option('--status <s>', 'only active or closed connections').choices(['active', 'closed']))
    .option('--limit <n>', 'at most this many (1-1000, default 50)', intArg(1, 1000))
    .action(
      action(ctx, async (opts: ListOptions) => {
        const query = { service_id: opts.service, status: opts.status, limit: opts.limit };
        const list = await makeClient(opts, ctx).get<ConnectionList>(BASE, query);
        emit(ctx, opts, list, () => renderConnections(list));
      }),
    );

  withClientOptions(
    program
      .command('disconnect')
      .argument('<connection_id>', 'connection id (from `taskhub connections`)')
      .description('close one proxied connection'),
  )
    .option('--reason <text>', 'why (sent to the client and kept on the connection)')
    .option('--no-notify', 'close without sending the client a management_notification first')
    .action(
      action(ctx, async (id: string, opts: DisconnectOptions) => {
        const c = await makeClient(opts, ctx).post<ConnectionView>(`${BASE}/${encodeURIComponent(id)}/disconnect`, {
          reason: opts.reason,
          notify_client: opts.notify,
        });
        emit(ctx, opts, c, () => `${c.message ?? 'Connection closed'}: ${c.connection_id}\n${renderConnection(c)}`);
      }),
    );
}
