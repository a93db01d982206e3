import { type Span, traceparentOf, tracingEnabled } from '../../../common/tracing/tracer.js';
import { endSessionSpan, sessionSpan } from './proxy-spans.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { AppConfig } from '../../../config/app-config.js';
import { EventBus, type DomainEvents } from '../../../common/events/event-bus.js';
import { Periodic } from '../../../common/periodic.js';
import {
  type CallStore,
  DEFAULT_TENANT,
  runAsCall,
  runAsSystem,
  runWithTenantSetting,
  SYSTEM_TENANT,
} from '../../../database/tenant-context.js';
import { messageCall } from '../../../common/request-id.js';
import type { Principal } from '../../auth/api-key.types.js';
import { clientAddress } from '../../edge/client-address.js';
import { RoundRobinCursor } from '../../routing/rule-engine.js';
import { RoutingService } from '../../routing/routing.service.js';
import { type ServiceRow, serviceEndpoint } from '../agent-service.types.js';
import { AgentServicesRepository } from '../agent-services.repository.js';
import { ConnectionRegistry, type ProxyConnection } from './connection-registry.js';
import { type ProxyRequest, selectService, type Selection, type SelectionFailure } from './service-selector.js';

const UPSTREAM_CONNECT_TIMEOUT_MS = 5000;
/** How long a connection whose service crashed waits for it (or a sibling) to come back. */
const FAILOVER_WAIT_MS = 10_000;
const SERVICES_CACHE_MS = 1000;

type DownReason = DomainEvents['service.down']['reason'];

interface Frame {
  data: Buffer;
  binary: boolean;
}

/** A client frame not sent yet: kept as the client sent it and wrapped when sent (the service is known then). */
interface ClientFrame extends Frame {
  /** When the client sent it (epoch ms): the wrapper's `timestamp`. */
  at: number;
}

/** One client connection and its current upstream. */
interface Link {
  conn: ProxyConnection;
  /**
   * The session's call store, its request id the connection id (`connection_id` of
   * connection_routed; X-Taskhub-Connection-Id upstream): the client's frames and close re-enter
   * it (one store for the session, none per frame); the upstream socket, opened inside it, inherits it.
   */
  call: CallStore;
  /** The caller's tenant setting: it reaches that tenant's services and rules only ('*': a global admin, all). */
  tenant: string;
  client: WebSocket;
  upstream: WebSocket | null;
  service: ServiceRow | null;
  request: ProxyRequest;
  headers: Record<string, unknown>;
  query: Record<string, string>;
  /** Client frames waiting for an upstream (routing, connecting or failing over), in order. */
  pending: ClientFrame[];
  pendingBytes: number;
  exclude: Set<string>;
  closing: boolean;
  /** Ends this link's wait for a service to come back (set while failing over). */
  wake: (() => void) | null;
  /** The session's span (tracing on): the upgrade's context continued, ended with the link. */
  span: Span | undefined;
  /**
   * When the oldest client message the agent has not answered yet was sent to it
   * (performance.now()), or null: the agent's next message times its answer.
   */
  awaiting: number | null;
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

/** WebSocket close reasons are limited to 123 bytes. */
const closeReason = (s: string): string => Buffer.from(s).subarray(0, 120).toString();

/**
 * The agent-service WebSocket proxy behind `/ws?service=…|tag=…|session_id=…`: picks a healthy
 * service by routing rules, opens the upstream WebSocket, relays frames both ways (text and
 * binary, pausing the faster side when the other's buffer passes the high-water mark) and
 * fails over to another matching service when the upstream dies.
 */
@Injectable()
export class AgentProxy implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AgentProxy');
  private readonly wss: WebSocketServer;
  private readonly links = new Map<string, Link>();
  private readonly cursor = new RoundRobinCursor();
  private readonly lastDown = new Map<string, DownReason>();
  private readonly upWaiters = new Set<() => void>();
  private readonly idleSweep: Periodic;
  private services: { rows: ServiceRow[]; at: number } | null = null;
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly repo: AgentServicesRepository,
    private readonly routing: RoutingService,
    private readonly registry: ConnectionRegistry,
    private readonly events: EventBus,
    private readonly config: AppConfig,
  ) {
    // Relayed text is not UTF-8-checked here: the receiving end checks it anyway.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.PROXY_MAX_FRAME_BYTES,
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    this.idleSweep = new Periodic('proxy idle sweep', this.logger, async () => {
      this.closeIdle();
      await this.leaveUnhealthyFromRegistry();
    });
  }

  onApplicationBootstrap(): void {
    this.unsubscribe.push(
      this.events.on('service.down', ({ serviceId, reason }) => {
        this.services = null;
        this.lastDown.set(serviceId, reason);
        // A stopped or removed external service has no process whose exit closes our upstreams.
        if (reason === 'service_stopped' || reason === 'service_removed') {
          for (const l of this.links.values())
            if (l.service?.id === serviceId) l.upstream?.close(1001, 'service stopped');
        }
        // Open but failing its health checks: its sessions move now (seed 003 `service_switched {reason: service_unhealthy}`).
        if (reason === 'service_unhealthy') this.leaveUnhealthy(serviceId);
      }),
      // Proxied clients are closed with 1001 (going away) before the servers close, so they reconnect elsewhere.
      this.events.on('hub.shutdown', () => {
        for (const l of this.links.values()) this.end(l, 1001, 'hub shutting down');
      }),
      this.events.on('service.up', ({ serviceId }) => {
        this.services = null;
        this.lastDown.delete(serviceId);
        for (const wake of [...this.upWaiters]) wake();
      }),
    );
    this.idleSweep.start(5000);
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe.forEach((u) => u());
    await this.idleSweep.stop();
    for (const l of this.links.values()) this.end(l, 1001, 'hub shutting down');
    this.wss.close();
  }

  get size(): number {
    return this.links.size;
  }

  /** Whether a `/ws` upgrade without proxy parameters is the proxy's: a routing rule on its headers, query or address matches it. */
  async claims(req: IncomingMessage, url: URL): Promise<boolean> {
    const context = {
      headers: req.headers as Record<string, unknown>,
      query: Object.fromEntries(url.searchParams),
      client_ip: clientAddress(req),
    };
    try {
      return (await this.routing.matchConnection(context)) !== null;
    } catch (e) {
      this.logger.warn({ err: e }, 'routing rules unavailable: a bare /ws gets the task stream');
      return false;
    }
  }

  /**
   * Takes over an authenticated upgrade of `/ws` with proxy parameters. `who` (the key's
   * principal) decides which tenant's services and rules it may reach; without it, the system's.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, who?: Principal): void {
    const tenant = !who || who.isGlobalAdmin ? SYSTEM_TENANT : (who.tenantId ?? DEFAULT_TENANT);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.attach(ws, req, url, tenant).catch((e: unknown) => this.internalError(ws, e));
    });
  }

  /** Sends a `management_notification` to every client of a service; returns how many got it. */
  notify(serviceId: string, data: Record<string, unknown>): number {
    let n = 0;
    for (const l of this.links.values()) {
      if (l.service?.id !== serviceId) continue;
      this.event(l.client, 'management_notification', data);
      n++;
    }
    return n;
  }

  /** Closes one client connection (admin disconnect); false when it is not held here. */
  disconnect(connectionId: string, reason: string, notifyClient: boolean): boolean {
    const l = this.links.get(connectionId);
    if (!l) return false;
    if (notifyClient)
      this.event(l.client, 'management_notification', {
        type: 'disconnect',
        message: reason,
        severity: 'warning',
        connection_id: connectionId,
      });
    this.end(l, 4000, reason, `disconnected: ${reason}`);
    return true;
  }

  private async attach(client: WebSocket, req: IncomingMessage, url: URL, tenant: string): Promise<void> {
    const query = Object.fromEntries(url.searchParams);
    const headers = req.headers as Record<string, unknown>;
    const pick = (k: string): string | undefined => {
      const header = headers[`x-${k.replace('_', '-')}`];
      return query[k] || (typeof header === 'string' ? header : undefined);
    };
    const clientIp = clientAddress(req);
    const request: ProxyRequest = {
      service: pick('service'),
      tag: pick('tag'),
      session_id: pick('session_id'),
      routing_hint: pick('routing_hint'),
      client_ip: clientIp,
    };
    const conn = this.registry.open(clientIp, request.session_id, tenant);
    request.session_id = conn.session_id;
    const link: Link = {
      conn,
      call: messageCall(conn.connection_id),
      tenant,
      client,
      upstream: null,
      service: null,
      request,
      headers,
      query,
      pending: [],
      pendingBytes: 0,
      exclude: new Set(),
      closing: false,
      wake: null,
      awaiting: null,
      span: tracingEnabled() ? sessionSpan(req, conn) : undefined,
    };
    this.links.set(conn.connection_id, link);
    return runAsCall(link.call, this.serve, link);
  }

  /** The session, inside its call store: relays the client's frames and routes it to a service. */
  private readonly serve = async (link: Link): Promise<void> => {
    const { client, conn } = link;
    client.on('message', (data, isBinary) => runAsCall(link.call, this.clientFrame, link, data, isBinary));
    client.on('close', (code) =>
      runAsCall(link.call, () =>
        this.end(link, code === 1005 || code === 1006 ? 1000 : code, 'client closed', 'client_closed'),
      ),
    );
    client.on('error', () => runAsCall(link.call, () => this.end(link, 1011, 'client error', 'client_error')));

    try {
      const routed = await this.route(link, null, (chosen) =>
        this.event(client, 'connection_routed', {
          connection_id: conn.connection_id,
          session_id: conn.session_id,
          target_service: chosen.service.name,
          service_id: chosen.service.id,
          service_endpoint: serviceEndpoint(chosen.service),
          routing_strategy: chosen.strategy,
          rule: chosen.rule?.name ?? null,
        }),
      );
      if (!routed.ok) return this.refuse(link, routed);
      this.flush(link);
    } catch (e) {
      this.internalError(client, e); // here, not in handleUpgrade's catch: logged with the session's id
    }
  };

  private readonly clientFrame = (link: Link, data: RawData, binary: boolean): void =>
    this.fromClient(link, toBuffer(data), binary);

  /**
   * Picks a service and opens its upstream, trying the next candidate when one cannot be
   * reached. `announce` runs before any upstream frame is relayed, so the client hears
   * `connection_routed` / `service_switched` before the service's first message.
   */
  private async route(
    link: Link,
    waitUntil: number | null,
    announce: (s: Selection) => void,
  ): Promise<Selection | SelectionFailure> {
    for (;;) {
      if (link.closing) return { ok: false, code: 'ROUTING_FAILED', message: 'client went away', recoverable: false };
      // Explicitly the link's tenant: fail-overs run from socket events, outside any request context.
      const all = this.ofTenant(await this.allServices(), link.tenant);
      const rule = await runWithTenantSetting(link.tenant, () =>
        this.routing.match({ headers: link.headers, query: link.query, client_ip: link.request.client_ip }),
      );
      const chosen = selectService(all, link.request, rule, {
        active: (id) => this.registry.load(id),
        sticky: this.registry.stickyService(link.conn),
        exclude: link.exclude,
        defaultStrategy: this.config.PROXY_DEFAULT_STRATEGY,
        cursor: this.cursor,
      });
      if (!chosen.ok) {
        if (waitUntil === null || !chosen.recoverable || Date.now() >= waitUntil) return chosen;
        await this.waitForService(link, waitUntil - Date.now());
        link.exclude.clear(); // a restarted service may take the connection again
        continue;
      }
      // Reserved while connecting, released in the same turn as the bind: concurrent picks see it.
      this.registry.reserve(chosen.service.id);
      const opened = await this.connectUpstream(chosen.service, link); // never rejects
      this.registry.release(chosen.service.id);
      if (opened && link.closing) opened.ws.close(1000, 'client closed');
      else if (opened) {
        link.upstream = opened.ws;
        link.service = chosen.service;
        this.registry.bind(link.conn, chosen.service, chosen.strategy, chosen.rule?.id ?? null);
        link.span?.addEvent('agent.routed', {
          'taskhub.agent.service': chosen.service.name,
          'taskhub.agent.service_id': chosen.service.id,
        });
        announce(chosen);
        this.wireUpstream(link, opened.ws, opened.early);
        return chosen;
      }
      if (link.closing) return { ok: false, code: 'ROUTING_FAILED', message: 'client went away', recoverable: false };
      this.registry.error(chosen.service.id);
      link.exclude.add(chosen.service.id);
    }
  }

  /** Opens the upstream WebSocket; frames it sends before we are wired are kept in `early`. */
  private connectUpstream(s: ServiceRow, link: Link): Promise<{ ws: WebSocket; early: Frame[] } | null> {
    const endpoint = serviceEndpoint(s);
    if (!endpoint) return Promise.resolve(null);
    return new Promise((resolve) => {
      const ws = new WebSocket(endpoint, {
        handshakeTimeout: UPSTREAM_CONNECT_TIMEOUT_MS,
        maxPayload: this.config.PROXY_MAX_FRAME_BYTES,
        perMessageDeflate: false,
        skipUTF8Validation: true,
        headers: {
          'x-taskhub-connection-id': link.conn.connection_id,
          'x-taskhub-session-id': link.conn.session_id,
          'x-forwarded-for': link.conn.client_ip,
          ...(link.span ? { traceparent: traceparentOf(link.span) } : {}),
        },
      });
      const early: Frame[] = [];
      // The first frame can arrive in the same read as the handshake, before anyone awaits 'open'.
      ws.on('message', (data, binary) => early.push({ data: toBuffer(data), binary }));
      const settle = (ok: boolean): void => {
        ws.removeAllListeners('open');
        ws.removeAllListeners('unexpected-response');
        if (!ok) {
          ws.on('error', () => undefined);
          ws.terminate();
        }
        resolve(ok ? { ws, early } : null);
      };
      ws.once('open', () => settle(true));
      ws.once('unexpected-response', () => settle(false));
      ws.once('error', () => settle(false));
    });
  }

  private wireUpstream(link: Link, upstream: WebSocket, early: Frame[]): void {
    upstream.on('error', () => undefined); // 'close' follows
    upstream.removeAllListeners('message');
    const relay = (buf: Buffer, isBinary: boolean): void => {
      if (link.upstream !== upstream) return;
      if (link.awaiting !== null) {
        this.registry.answered(link.conn, performance.now() - link.awaiting);
        link.awaiting = null;
      }
      this.registry.sent(link.conn, buf.length);
      this.forward(upstream, link.client, buf, isBinary);
    };
    for (const f of early) relay(f.data, f.binary);
    upstream.on('message', (data, isBinary) => relay(toBuffer(data), isBinary));
    upstream.on('close', (code, reason) => {
      if (link.upstream !== upstream || link.closing) return;
      link.upstream = null;
      if (code === 1000) {
        // The agent ended the session on purpose: end the client's too.
        this.end(link, 1000, reason.toString() || 'service closed the session', 'service_closed');
        return;
      }
      this.failover(link, code).catch((e: unknown) => this.internalError(link.client, e));
    });
  }

  private async failover(link: Link, code: number): Promise<void> {
    const from = link.service as ServiceRow;
    link.awaiting = null; // the next service is timed from its first message (the frames flushed to it)
    const reason = this.lastDown.get(from.id) ?? (code === 1001 ? 'service_stopped' : 'service_unavailable');
    this.registry.error(from.id);
    link.exclude.add(from.id);
    this.services = null;
    const routed = await this.route(link, Date.now() + FAILOVER_WAIT_MS, (chosen) =>
      this.event(link.client, 'service_switched', {
        from_service: from.name,
        to_service: chosen.service.name,
        reason,
        session_preserved: true,
        session_id: link.conn.session_id,
      }),
    );
    if (link.closing) return;
    if (!routed.ok) return this.refuse(link, routed);
    this.logger.log(
      `connection ${link.conn.connection_id} switched ${from.name} -> ${routed.service.name} (${reason})`,
    );
    this.flush(link);
  }

  /** Fails over every connection of this process on a service whose health check fails, while its upstream is still open. */
  private leaveUnhealthy(serviceId: string): void {
    this.lastDown.set(serviceId, 'service_unhealthy');
    for (const l of this.links.values()) {
      const up = l.upstream;
      if (l.service?.id !== serviceId || !up || l.closing) continue;
      l.upstream = null; // its late frames and close are ignored from here on
      up.close(1001, 'service unhealthy');
      setTimeout(() => up.terminate(), 2000).unref();
      this.failover(l, 1001).catch((e: unknown) => this.internalError(l.client, e));
    }
  }

  /**
   * Health is checked by the hub that runs a service, and its event reaches only that process:
   * the others see the result in the registry and move their connections on the next sweep.
   */
  private async leaveUnhealthyFromRegistry(): Promise<void> {
    if (this.links.size === 0) return;
    const bound = new Set([...this.links.values()].map((l) => l.service?.id));
    this.services = null;
    for (const s of await this.allServices()) {
      if (bound.has(s.id) && s.status === 'running' && s.health_status === 'unhealthy') this.leaveUnhealthy(s.id);
    }
  }

  private fromClient(link: Link, data: Buffer, binary: boolean): void {
    this.registry.received(link.conn, data.length);
    const up = link.upstream;
    if (up && up.readyState === WebSocket.OPEN && link.pending.length === 0) {
      this.toService(link, up, data, binary);
      return;
    }
    // Kept as sent: whether and how it is wrapped depends on the service it reaches, which
    // routing (or a fail-over) has not chosen yet.
    link.pending.push({ data, binary, at: Date.now() });
    link.pendingBytes += data.length;
    if (link.pendingBytes > this.config.PROXY_HIGH_WATER_BYTES) link.client.pause();
  }

  /** Sends a client frame to the service, wrapped if it asks for that; starts timing its answer. */
  private toService(link: Link, up: WebSocket, data: Buffer, binary: boolean, at?: number): void {
    const payload = !binary && link.service?.config.proxy_metadata ? this.wrap(link, data, at ?? Date.now()) : data;
    link.awaiting ??= performance.now();
    this.forward(link.client, up, payload, binary);
  }

  /** Seed 003 §2.2: `{proxy_metadata, original_message}` (the default; `config.proxy_metadata: false` turns it off). */
  private wrap(link: Link, data: Buffer, at: number): Buffer {
    let original: unknown = data.toString();
    try {
      original = JSON.parse(original as string);
    } catch {
      // not JSON: passed as the string it is
    }
    const proxy_metadata = {
      connection_id: link.conn.connection_id,
      session_id: link.conn.session_id,
      target_service: link.service?.name,
      routing_strategy: link.conn.routing_strategy,
      timestamp: new Date(at).toISOString(),
    };
    return Buffer.from(JSON.stringify({ proxy_metadata, original_message: original }));
  }

  private flush(link: Link): void {
    const up = link.upstream;
    if (!up || up.readyState !== WebSocket.OPEN) return;
    const frames = link.pending;
    link.pending = [];
    link.pendingBytes = 0;
    for (const f of frames) this.toService(link, up, f.data, f.binary, f.at);
    if (link.client.isPaused) link.client.resume();
  }

  /**
   * Sends to `to`; pauses reading `from` while `to` has more than the high-water mark queued.
   * Only a send into a backed-up peer carries a completion callback (the one that resumes
   * `from`): the common case allocates nothing per message.
   */
  private forward(from: WebSocket, to: WebSocket, data: Buffer, binary: boolean): void {
    if (to.readyState !== WebSocket.OPEN) return;
    const high = this.config.PROXY_HIGH_WATER_BYTES;
    if (to.bufferedAmount + data.length <= high / 2) {
      to.send(data, { binary });
      return;
    }
    to.send(data, { binary }, () => {
      if (from.isPaused && to.bufferedAmount < high / 2) from.resume();
    });
    if (to.bufferedAmount > high && !from.isPaused) from.pause();
  }

  /** Routing itself failed (e.g. the database is unreachable): tell the client, close, log. */
  private internalError(client: WebSocket, e: unknown): void {
    this.logger.error({ err: e }, 'proxy routing failed');
    const link = [...this.links.values()].find((l) => l.client === client);
    this.event(client, 'error', {
      code: 'ROUTING_FAILED',
      message: 'The hub could not route this connection',
      recoverable: true,
    });
    if (link) this.end(link, 1011, 'routing failed', 'internal_error');
    else client.close(1011, 'routing failed');
  }

  private refuse(link: Link, f: SelectionFailure): void {
    this.event(link.client, 'error', { code: f.code, message: f.message, recoverable: f.recoverable });
    this.end(link, f.code === 'INSUFFICIENT_RESOURCES' ? 1013 : 1011, f.code, f.code.toLowerCase());
  }

  private end(link: Link, code: number, reason: string, why = reason): void {
    if (link.closing) return;
    link.closing = true;
    this.links.delete(link.conn.connection_id);
    this.registry.close(link.conn, why);
    if (link.span) endSessionSpan(link.span, link.conn, code, why);
    const up = link.upstream;
    link.upstream = null;
    if (up && up.readyState <= WebSocket.OPEN) up.close(1000, 'client closed');
    if (link.client.readyState <= WebSocket.OPEN) {
      const valid =
        code === 1000 ||
        (code >= 3000 && code <= 4999) ||
        (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006);
      link.client.close(valid ? code : 1000, closeReason(reason));
    }
    link.wake?.();
  }

  private event(ws: WebSocket, event: string, data: unknown): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event, data }));
  }

  /** Until any service comes up, this link closes, or `ms` pass. */
  private waitForService(link: Link, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.upWaiters.delete(done);
        link.wake = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      this.upWaiters.add(done);
      link.wake = done;
    });
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const l of this.links.values()) {
      const timeout = l.service?.config.session_timeout ?? 0;
      if (timeout > 0 && now - l.conn.last_activity > timeout * 1000)
        this.end(l, 4001, 'session timeout', 'session_timeout');
    }
  }

  /** Every tenant's services, one cache for the hub process (filtered per link by ofTenant). */
  private async allServices(): Promise<ServiceRow[]> {
    if (this.services && Date.now() - this.services.at < SERVICES_CACHE_MS) return this.services.rows;
    const rows = await runAsSystem(() => this.repo.all());
    this.services = { rows, at: Date.now() };
    return rows;
  }

  private ofTenant(rows: ServiceRow[], tenant: string): ServiceRow[] {
    return tenant === SYSTEM_TENANT ? rows : rows.filter((s) => s.tenant_id === tenant);
  }
}
