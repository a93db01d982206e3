import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type WebSocket, WebSocketServer } from 'ws';
import { messageCall } from '../../common/request-id.js';
import { runAsCall } from '../../database/tenant-context.js';
import { EventBus, type HubLogLine } from '../../common/events/event-bus.js';
import { setHubLogSink } from '../../common/logger.js';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { TaskRow } from '../tasks/task.types.js';
import { type ApexRoute, preferredPath } from './apex-paths.js';
import { RedisFanout } from './redis-fanout.js';
import type { ServerToClientEvents } from '../../contracts/sockets/log-channel.js';
import { socketPrincipal } from './socket-auth.js';
import { publishingTenant, sees } from './tenant-delivery.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { closeError } from './socket-error.js';
import type { UpgradeDecision } from './raw-channel.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { isOversizeFrame, sendBounded } from '../edge/outbound.js';
import { AppError, ErrorCode } from '../../common/errors.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const rank = (level: string): number => LEVELS.indexOf(level as (typeof LEVELS)[number]);
/** Lines replayed to a new connection. */
export const LOG_REPLAY_LINES = 100;
const FANOUT_CHANNEL = 'taskhub:log-channel';

interface LogFilter {
  level?: string;
  node_id?: string;
  task_id?: string;
  source?: string;
}

interface LogClient {
  /** `log-<uuid>`: the first part of its messages' ids (`<id>:<n>`, n counting them in `seq`). */
  id: string;
  seq: number;
  ws: WebSocket;
  filter: LogFilter;
  alive: boolean;
  /** The tenant setting it acts for (see tenant-delivery.ts). */
  tenant: string;
}

/** A line and whose it is (null: the hub's own, or of no known tenant: global admins only). Only `line` goes out. */
interface TenantLine {
  line: HubLogLine;
  tenant: string | null;
}

const matches = (f: LogFilter, l: HubLogLine): boolean =>
  (f.level === undefined || rank(l.level) >= rank(f.level)) &&
  (f.node_id === undefined || l.node_id === f.node_id) &&
  (f.task_id === undefined || l.task_id === f.task_id) &&
  (f.source === undefined || l.source === f.source);

/**
 * The Apex log channel (`/ABPlog/VCP_Key=<key>`, `/log/…`, deprecated `/VCPlog/…`), admin
 * keys only: a live stream of `{type: "log", data: {time, level, source, node_id?, task_id?,
 * service_id?, message}}` — node `log` frames, task events, agent-service output, alerts, and
 * the hub's own warnings and errors — filtered by the query (`level` = that level and worse,
 * `node_id`, `task_id`, `source`). A new connection first gets the last 100 lines. With
 * REDIS_URL every hub's lines reach every hub's listeners, except task lifecycle lines: those
 * are built only while this hub has listeners and stay on it (they cost per task under load;
 * task failures reach everyone as alerts).
 */
@Injectable()
export class LogChannelServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<LogClient>();
  private readonly recent: TenantLine[] = [];
  private readonly fanout = new RedisFanout<TenantLine>(FANOUT_CHANNEL, (l) => this.deliver(l));
  private unsubscribe: (() => void)[] = [];
  private pinger?: NodeJS.Timeout;

  constructor(
    private readonly events: EventBus,
    private readonly keys: ApiKeysService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly tenants: TenantsService,
    private readonly edge: EdgeMetrics,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.LOG_CHANNEL_MAX_FRAME_BYTES });
  }

  async onApplicationBootstrap(): Promise<void> {
    // Task lifecycle lines go to this hub's listeners only, and only while there are some.
    const task = (t: TaskRow, level: HubLogLine['level'], what: string): void => {
      if (this.clients.size === 0) return;
      this.show(t.tenant_id, {
        time: new Date().toISOString(),
        level,
        source: 'task',
        task_id: t.id,
        ...(t.node_id ? { node_id: t.node_id } : {}),
        message: `task ${t.id} (${t.type}) ${what}`,
      });
    };
    this.unsubscribe = [
      this.events.on('hub.log', (l) => this.line(l)),
      this.events.on('hub.alert', (a) =>
        this.line(
          {
            time: new Date().toISOString(),
            level: a.severity === 'critical' ? 'error' : 'warn',
            source: a.source,
            message: a.message,
            ...(a.node_id ? { node_id: a.node_id } : {}),
            ...(a.task_id ? { task_id: a.task_id } : {}),
            ...(a.service_id ? { service_id: a.service_id } : {}),
          },
          a.tenant_id,
        ),
      ),
      this.events.on('task.created', ({ task: t }) => task(t, 'info', 'created')),
      this.events.on('task.assigned', ({ task: t }) =>
        task(t, 'info', `assigned to ${t.node_id} (attempt ${t.attempt})`),
      ),
      this.events.on('task.started', ({ task: t }) =>
        task(t, 'info', `started by ${t.worker_id} (attempt ${t.attempt})`),
      ),
      this.events.on('task.completed', ({ task: t }) => task(t, 'info', 'completed')),
      this.events.on('task.failed', ({ task: t, retrying }) =>
        task(t, retrying ? 'warn' : 'error', retrying ? 'failed; retrying' : `failed: ${errorText(t.error)}`),
      ),
      this.events.on('task.cancelled', ({ task: t }) => task(t, 'info', 'cancelled')),
    ];
    // The hub's own lines are hub-wide, whatever request they were logged in.
    setHubLogSink((level, context, message) =>
      this.line(
        {
          time: new Date().toISOString(),
          level,
          source: 'hub',
          message: context ? `[${context}] ${message}` : message,
        },
        null,
      ),
    );
    this.metrics.registerClientCounter('log_channel', () => this.clients.size);
    this.pinger = setInterval(() => this.ping(), this.config.SOCKET_PING_INTERVAL_MS);
    this.pinger.unref();
    await this.fanout.start(this.config.REDIS_URL);
  }

  /** The upgrade of an Apex log path: admin keys only; query filters checked before it opens. */
  async authorize(req: IncomingMessage, route: ApexRoute, url: URL): Promise<UpgradeDecision> {
    const { principal, tenant, error } = await socketPrincipal(
      { auth: route.key ? { token: route.key } : undefined, headers: req.headers, query: {} },
      this.keys,
      this.config,
      [],
      this.tenants,
    );
    if (error) return { error };
    const invalid = (field: string, message: string): { error: AppError } => ({
      error: new AppError(ErrorCode.VALIDATION_ERROR, message, { field }),
    });
    const filter: LogFilter = {};
    for (const key of ['level', 'node_id', 'task_id', 'source'] as const) {
      const value = url.searchParams.get(key);
      if (value === null) continue;
      if (value.length === 0 || value.length > 200) return invalid(key, `${key} must be 1 to 200 characters`);
      filter[key] = value;
    }
    if (filter.level !== undefined && rank(filter.level) < 0)
      return invalid('level', `level must be one of ${LEVELS.join(', ')}`);
    return {
      channel: 'log',
      keyId: principal.keyId,
      open: (r, socket, head) => this.wss.handleUpgrade(r, socket, head, (ws) => this.open(ws, filter, route, tenant)),
    };
  }

  private open(ws: WebSocket, filter: LogFilter, route: ApexRoute, tenant: string): void {
    const client: LogClient = { id: `log-${randomUUID()}`, seq: 0, ws, filter, alive: true, tenant };
    this.clients.add(client);
    ws.on('pong', () => (client.alive = true));
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', (e) => {
      if (isOversizeFrame(e)) this.edge.drop('log', 'frame_too_large');
      this.clients.delete(client);
    });
    // Listen-only: anything sent is answered with an error, the connection stays. In its own call
    // store like every inbound message (nothing it does logs today; whatever is added will).
    ws.on('message', () => runAsCall(messageCall(`${client.id}:${++client.seq}`), this.listenOnly, ws));
    if (route.deprecated)
      this.send(ws, 'warning', {
        code: 'DEPRECATED_PATH',
        message: `${route.path} is deprecated; use ${preferredPath(route)}`,
      });
    for (const l of this.recent) if (sees(tenant, l.tenant) && matches(filter, l.line)) this.send(ws, 'log', l.line);
  }

  /**
   * A line of this hub: kept for replay, shown here, and sent to the other hubs. Whose it is:
   * `tenant` when the caller knows, else the publisher's context (a node's log frame runs in its
   * tenant; the hub's own lines in none).
   */
  private line(line: HubLogLine, tenant: string | null = publishingTenant()): void {
    const l = { line, tenant };
    this.deliver(l);
    this.fanout.publish(l);
  }

  private deliver(l: TenantLine): void {
    this.recent.push(l);
    if (this.recent.length > LOG_REPLAY_LINES) this.recent.shift();
    this.show(l.tenant, l.line);
  }

  private show(tenant: string | null, l: HubLogLine): void {
    if (this.clients.size === 0) return;
    const frame = frameOf('log', l);
    for (const c of this.clients) if (sees(c.tenant, tenant) && matches(c.filter, l)) this.push(c.ws, frame);
  }

  private ping(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.ws.terminate();
        this.clients.delete(c);
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  private readonly listenOnly = (ws: WebSocket): void =>
    this.send(ws, 'error', closeError('VALIDATION_ERROR', 'The log channel is listen-only', 'message'));

  private send<K extends keyof ServerToClientEvents>(ws: WebSocket, type: K, data: ServerToClientEvents[K]): void {
    this.push(ws, frameOf(type, data));
  }

  /** A listener that stops reading is dropped past OUTBOUND_LIMIT_BYTES, not buffered for. */
  private push(ws: WebSocket, frame: string): void {
    sendBounded(ws, frame, this.config.OUTBOUND_LIMIT_BYTES, () => this.edge.drop('log', 'slow_consumer'));
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.pinger);
    setHubLogSink(undefined);
    this.unsubscribe.forEach((u) => u());
    for (const c of this.clients) c.ws.close(1012, 'server restarting');
    this.clients.clear();
    this.wss.close();
    await this.fanout.stop();
  }
}

function frameOf<K extends keyof ServerToClientEvents>(type: K, data: ServerToClientEvents[K]): string {
  return JSON.stringify({ type, data });
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  const m = (error as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : 'unknown error';
}
