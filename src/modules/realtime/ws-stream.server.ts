import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type WebSocket, WebSocketServer } from 'ws';
import { messageCall } from '../../common/request-id.js';
import { runAsCall } from '../../database/tenant-context.js';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import { AgentProxy } from '../agent-services/proxy/agent-proxy.service.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { type ClientEvent, relayClientEvents } from './client-events.js';
import { codexEventData } from '../../compat/codex/codex-events.mapper.js';
import { codexStatusView } from '../../compat/codex/codex-system.view.js';
import { CodexMetricsService } from '../metrics/codex-metrics.service.js';
import { HubStatusService } from '../metrics/hub-status.service.js';
import { ShutdownService } from '../metrics/shutdown.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { Principal } from '../auth/api-key.types.js';
import type { CodexStatusData, ServerToClientEvents } from '../../contracts/sockets/ws-stream.js';
import type { OpenAiError } from '../../contracts/sockets/tasks.js';
import { ChatWatch, parseChatSubscription } from './chat-watch.js';
import { socketPrincipal } from './socket-auth.js';
import { closeError } from './socket-error.js';
import type { UpgradeDecision } from './raw-channel.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { isOversizeFrame, sendBounded } from '../edge/outbound.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { RedisFanout } from './redis-fanout.js';
import { publishingTenant, sees } from './tenant-delivery.js';
import { TenantsService } from '../tenants/tenants.service.js';

/** Query keys (or X-… headers) that select the agent-service proxy on the same path (seed 003). */
const PROXY_KEYS = ['service', 'tag', 'session_id', 'routing_hint'];
const FANOUT_CHANNEL = 'taskhub:client-events';

interface StreamClient {
  /** `stream-<uuid>`: the first part of its messages' ids (`<id>:<n>`, n counting them in `seq`). */
  id: string;
  seq: number;
  ws: WebSocket;
  all: boolean;
  ids: Set<string>;
  alive: boolean;
  who: Principal;
  /** The tenant setting it acts for: it hears only that tenant's events (see tenant-delivery.ts). */
  tenant: string;
  /** Hears the periodic `metrics_update` (on by default; `unsubscribe_metrics` stops it). */
  metrics: boolean;
  /** LLM gateway requests it watches (`subscribe_chat`), or every one (admins, `all: true`). */
  chats: ChatWatch;
}

type Inbound = { type?: unknown; data?: unknown };

/**
 * The raw WebSocket `/ws` of Codex Father: `{type, data}` JSON both ways. On connect a client
 * gets `connected` and then the initial `status` (the seed's flow diagram); it hears every task
 * until it narrows with `subscribe_tasks {taskIds}`, and `metrics_update` every
 * METRICS_UPDATE_INTERVAL_MS (the seed's monitoring example listens for it without asking);
 * `get_status`, `ping` and the task pushes of the event bus, in the seed's words. Malformed messages get `{type: 'error'}` and the
 * connection stays open. With REDIS_URL, events of tasks handled on other hub processes are
 * relayed through a Redis channel.
 */
@Injectable()
export class WsStreamServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<StreamClient>();
  private unsubscribe: (() => void)[] = [];
  private heartbeat?: NodeJS.Timeout;
  private metricsTimer?: NodeJS.Timeout;
  private readonly fanout = new RedisFanout<ClientEvent>(FANOUT_CHANNEL, (e) => this.broadcast(e));

  constructor(
    private readonly events: EventBus,
    private readonly keys: ApiKeysService,
    private readonly config: AppConfig,
    private readonly status: HubStatusService,
    private readonly metrics: MetricsService,
    private readonly codexMetrics: CodexMetricsService,
    private readonly shutdown: ShutdownService,
    private readonly proxy: AgentProxy,
    private readonly tenants: TenantsService,
    private readonly edge: EdgeMetrics,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.WS_MAX_FRAME_BYTES });
  }

  get connections(): number {
    return this.clients.size;
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = relayClientEvents(
      (event, handler) => this.events.on(event, handler),
      (e) => {
        this.broadcast(e);
        this.fanout.publish(e);
      },
      () => this.fanout.enabled || this.clients.size > 0,
    );
    void this.fanout.start(this.config.REDIS_URL);
    this.unsubscribe.push(
      this.events.on('hub.shutdown', ({ reason }) => this.notifyShutdown(reason)),
      // Chat streamed to front-ends (seed 001: HTTP chat, replies over the WebSocket).
      this.events.on('llm.chunk', ({ requestId, keyId, chunk }) =>
        this.chat(requestId, keyId, 'chat.chunk', { request_id: requestId, chunk }, false),
      ),
      this.events.on('llm.completed', ({ requestId, keyId, completion, error }) =>
        this.chat(
          requestId,
          keyId,
          'chat.completed',
          { request_id: requestId, completion, error: error as OpenAiError | null },
          true,
        ),
      ),
    );
    this.metrics.registerClientCounter('ws', () => this.clients.size);
    this.heartbeat = setInterval(() => this.beat(), this.config.WS_HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
    this.metricsTimer = setInterval(() => void this.pushMetrics(), this.config.METRICS_UPDATE_INTERVAL_MS);
    this.metricsTimer.unref();
  }

  private async pushMetrics(): Promise<void> {
    // One document per tenant setting with listeners: each client hears its own tenant's counts.
    const byTenant = new Map<string, StreamClient[]>();
    for (const c of this.clients) if (c.metrics) byTenant.set(c.tenant, [...(byTenant.get(c.tenant) ?? []), c]);
    for (const [tenant, listeners] of byTenant) {
      let frame: string;
      try {
        frame = frameOf('metrics_update', {
          ...(await this.codexMetrics.documentFor(tenant)),
          timestamp: new Date().toISOString(),
        });
      } catch {
        return; // database unavailable: skip this tick, the next one tries again
      }
      for (const c of listeners) this.push(c.ws, frame);
    }
  }

  private async statusView(): Promise<CodexStatusData> {
    return codexStatusView(await this.status.snapshot(), this.shutdown.isDraining);
  }

  /** An upgrade to `/ws` (see UpgradeRouter): the Codex stream, or the agent proxy when it names a service. */
  async authorize(req: IncomingMessage, url: URL): Promise<UpgradeDecision> {
    // Seed 003: proxy parameters come as query keys or as X-Service / X-Tag / X-Session-Id / X-Routing-Hint headers.
    // Without them, a routing rule that matches the upgrade request (e.g. header.x-user-tier = vip) sends it to the proxy too.
    const proxied =
      PROXY_KEYS.some((k) => url.searchParams.has(k) || req.headers[`x-${k.replace('_', '-')}`] !== undefined) ||
      (await this.proxy.claims(req, url));
    const open = proxied ? this.proxy.size : this.clients.size;
    if (open >= this.config.WS_MAX_CONNECTIONS)
      return {
        error: new AppError(ErrorCode.SERVICE_UNAVAILABLE, `At most ${this.config.WS_MAX_CONNECTIONS} connections`),
      };
    const query = Object.fromEntries(url.searchParams);
    const { principal, tenant, error } = await socketPrincipal(
      { headers: req.headers, query },
      this.keys,
      this.config,
      ['client'],
      this.tenants,
    );
    if (error) return { error };
    if (proxied)
      return {
        channel: 'proxy',
        keyId: principal.keyId,
        open: (r, socket, head) => this.proxy.handleUpgrade(r, socket, head, url, principal),
      };
    return {
      channel: 'ws',
      keyId: principal.keyId,
      open: (r, socket, head) => this.wss.handleUpgrade(r, socket, head, (ws) => this.open(ws, principal, tenant)),
    };
  }

  private open(ws: WebSocket, who: Principal, tenant: string): void {
    const client: StreamClient = {
      id: `stream-${randomUUID()}`,
      seq: 0,
      ws,
      all: true,
      ids: new Set(),
      alive: true,
      who,
      tenant,
      metrics: true,
      chats: new ChatWatch(who),
    };
    this.clients.add(client);
    ws.on('pong', () => (client.alive = true));
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', (e) => {
      if (isOversizeFrame(e)) this.edge.drop('ws', 'frame_too_large');
      this.clients.delete(client);
    });
    // Each message is handled in its own call store (its id on every log line it causes).
    ws.on(
      'message',
      (raw, isBinary) =>
        void runAsCall(messageCall(`${client.id}:${++client.seq}`), this.onMessage, client, raw.toString(), isBinary),
    );
    this.send(ws, 'connected', {
      subscribed: 'all',
      heartbeatInterval: this.config.WS_HEARTBEAT_INTERVAL_MS,
      metricsInterval: this.config.METRICS_UPDATE_INTERVAL_MS,
    });
    // The initial state of the seed's monitoring flow ("发送初始状态"), before any task push.
    this.statusView().then(
      (status) => this.send(ws, 'status', status),
      () => undefined,
    );
  }

  private readonly onMessage = async (client: StreamClient, raw: string, isBinary: boolean): Promise<void> => {
    let message: Inbound;
    try {
      message = isBinary ? {} : (JSON.parse(raw) as Inbound);
    } catch {
      return this.fail(client.ws, 'Message is not valid JSON', 'message');
    }
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
      return this.fail(client.ws, 'Expected {type, data}', 'type');
    }
    switch (message.type) {
      case 'ping':
        return this.send(client.ws, 'pong', { timestamp: new Date().toISOString() });
      case 'subscribe_chat':
      case 'unsubscribe_chat': {
        const sub = parseChatSubscription(message.data, client.who);
        if ('error' in sub) return this.fail(client.ws, sub.error, sub.field, message.type);
        if (message.type === 'subscribe_chat') client.chats.add(sub);
        else client.chats.remove(sub);
        return this.send(client.ws, 'chat_subscribed', client.chats.view());
      }
      case 'get_status':
        return this.send(client.ws, 'status', await this.statusView());
      case 'subscribe_metrics':
      case 'unsubscribe_metrics':
        client.metrics = message.type === 'subscribe_metrics';
        return this.send(client.ws, 'metrics_subscribed', {
          metrics: client.metrics,
          intervalMs: this.config.METRICS_UPDATE_INTERVAL_MS,
        });
      case 'subscribe_tasks':
      case 'unsubscribe_tasks': {
        const ids = (message.data as { taskIds?: unknown } | undefined)?.taskIds;
        if (
          ids !== undefined &&
          (!Array.isArray(ids) || ids.length > 1000 || !ids.every((x) => typeof x === 'string'))
        ) {
          return this.fail(client.ws, 'taskIds must be an array of task ids', 'data.taskIds', message.type);
        }
        const list = (ids as string[] | undefined) ?? [];
        if (message.type === 'subscribe_tasks') {
          client.all = list.length === 0;
          list.forEach((id) => client.ids.add(id));
        } else if (list.length === 0) {
          client.all = false;
          client.ids.clear();
        } else {
          list.forEach((id) => client.ids.delete(id));
        }
        return this.send(client.ws, 'subscribed', { all: client.all, taskIds: [...client.ids] });
      }
      default:
        return this.fail(client.ws, `Unknown message type: ${message.type}`, 'type', message.type);
    }
  };

  private broadcast(e: ClientEvent): void {
    if (this.clients.size === 0) return;
    // Task pushes in the Codex words; notices (alerts, notifications, nodes) as they are.
    const frame = JSON.stringify({ type: e.type, data: e.type.startsWith('task_') ? codexEventData(e.data) : e.data });
    // (Typed as ServerToClientEvents[e.type]: CodexTaskEventData for task_*, the ClientEventData otherwise.)
    // Alerts and notifications reach every client, however it narrowed its subscription.
    const notice = e.type === 'alert' || e.type === 'notification';
    for (const c of this.clients) {
      if (!sees(c.tenant, e.tenantId)) continue;
      if (c.all || notice || (e.taskId !== null && c.ids.has(e.taskId))) this.push(c.ws, frame);
    }
  }

  private chat<K extends 'chat.chunk' | 'chat.completed'>(
    requestId: string,
    keyId: string | null,
    type: K,
    data: ServerToClientEvents[K],
    last: boolean,
  ): void {
    if (this.clients.size === 0) return;
    let frame: string | undefined;
    const tenant = publishingTenant();
    for (const c of this.clients) {
      // A key's own requests are its own; other keys' only within the admin's tenant.
      if (!c.chats.wants(requestId, keyId) || (c.who.keyId !== keyId && !sees(c.tenant, tenant))) continue;
      frame ??= frameOf(type, data);
      this.push(c.ws, frame);
      if (last) c.chats.finished(requestId);
    }
  }

  private beat(): void {
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

  private send<K extends keyof ServerToClientEvents>(ws: WebSocket, type: K, data: ServerToClientEvents[K]): void {
    this.push(ws, frameOf(type, data));
  }

  /** A client that stops reading is dropped past OUTBOUND_LIMIT_BYTES, not buffered for. */
  private push(ws: WebSocket, frame: string): void {
    sendBounded(ws, frame, this.config.OUTBOUND_LIMIT_BYTES, () => this.edge.drop('ws', 'slow_consumer'));
  }

  /** A malformed or unknown message: `error`, and the connection stays. */
  private fail(ws: WebSocket, message: string, field: string, event?: string): void {
    this.send(ws, 'error', closeError('VALIDATION_ERROR', message, event, { field }));
  }

  /** Tell every client the hub is going away (and that it may reconnect), then close with 1001. */
  notifyShutdown(reason = 'shutdown'): void {
    for (const c of this.clients) {
      this.send(c.ws, 'server_shutdown', { reason, reconnect: true, timestamp: new Date().toISOString() });
      c.ws.close(1001, 'server shutting down');
    }
    this.clients.clear();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.metricsTimer);
    this.unsubscribe.forEach((u) => u());
    this.notifyShutdown();
    this.wss.close();
    await this.fanout.stop();
  }
}

/** One `{type, data}` frame of the contract. */
function frameOf<K extends keyof ServerToClientEvents>(type: K, data: ServerToClientEvents[K]): string {
  return JSON.stringify({ type, data });
}
