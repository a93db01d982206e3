import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { DEFAULT_TENANT, runAsSystem, SYSTEM_TENANT } from '../../../database/tenant-context.js';
import { INSTANCE_ID } from '../../nodes/nodes.service.js';
import { SessionStatsRepository } from '../session-stats.repository.js';

export type ConnectionStatus = 'active' | 'closed';

/** One client connection through the proxy, as /connections shows it. */
export interface ProxyConnection {
  connection_id: string;
  session_id: string;
  client_ip: string;
  target_service_id: string | null;
  target_service: string | null;
  routing_strategy: string | null;
  rule_id: string | null;
  status: ConnectionStatus;
  connected_at: Date;
  /** Epoch ms (a number: it is written on every relayed message). */
  last_activity: number;
  closed_at: Date | null;
  close_reason: string | null;
  /** To the client. */
  bytes_sent: number;
  /** From the client. */
  bytes_received: number;
  messages_sent: number;
  messages_received: number;
  /** Fail-overs to another service. */
  switches: number;
  /** Its service's counters (internal: saves a lookup per relayed message). */
  counters: ServiceCounters | null;
  /** Who opened it (internal): the caller's tenant setting ('*': a global admin). */
  tenant: string;
  /** The tenant its session is stored under (internal): the caller's, or for a global admin its first service's. */
  session_tenant: string | null;
}

/**
 * Live counters per service in this hub process (routing load, stat samples). The counts the
 * API reports (connections, sessions, errors) are stored: see SessionStatsRepository.
 */
export interface ServiceCounters {
  active_connections: number;
  /** Sessions with an open connection (in this process) whose service this is. */
  active_sessions: number;
  /** Messages relayed either way not yet stored by the sampler (it takes off what it stored). */
  messagesSinceSample: number;
  /** Agent answers timed since the last sample, and their summed time in ms. */
  responsesSinceSample: number;
  responseMsSinceSample: number;
  errorsSinceSample: number;
  openedSinceSample: number;
}

interface Session {
  id: string;
  service_id: string | null;
  started_at: number;
  open: number;
}

const KEEP_CLOSED = 1000;
const KEEP_SESSIONS = 10_000;

/** Sessions are the clients' ids, unique per tenant: two tenants may both use `s1`. */
const sessionKey = (c: Pick<ProxyConnection, 'session_id' | 'tenant'>): string => `${c.tenant}\u0000${c.session_id}`;

/** Today's date in UTC (`*_today` counts from UTC midnight). */
export const utcDay = (d: Date = new Date()): string => d.toISOString().slice(0, 10);

const newCounters = (): ServiceCounters => ({
  active_connections: 0,
  active_sessions: 0,
  messagesSinceSample: 0,
  responsesSinceSample: 0,
  responseMsSinceSample: 0,
  errorsSinceSample: 0,
  openedSinceSample: 0,
});

/**
 * The proxy's live connections and sessions in this hub process. A session (the client's
 * `session_id`, or one made per connection) remembers its service, so a reconnect with the
 * same id goes back to it while it is healthy. Opens, fail-overs, closes and errors are also
 * written to PostgreSQL (in order per session, off the relay path), where every hub's stats
 * come from.
 */
@Injectable()
export class ConnectionRegistry implements OnApplicationShutdown {
  private readonly logger = new Logger('ConnectionRegistry');
  /** The last stored write of each session (writes of one session run in order). */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly active = new Map<string, ProxyConnection>();
  private readonly closed: ProxyConnection[] = [];
  private readonly sessions = new Map<string, Session>();
  private readonly counters = new Map<string, ServiceCounters>();
  /** Connections being opened to a service: counted as load so concurrent picks spread. */
  private readonly reserved = new Map<string, number>();
  /** Hub-wide peak of open proxied connections. */
  peak = 0;

  constructor(private readonly stored: SessionStatsRepository) {}

  async onApplicationShutdown(): Promise<void> {
    await this.settled();
  }

  /** Resolves once every stored write queued so far has finished. */
  async settled(): Promise<void> {
    await Promise.all([...this.writes.values()]);
  }

  /** `tenant`: the caller's; session ids are the clients' own, so they are unique per tenant only. */
  open(clientIp: string, sessionId: string | undefined, tenant: string = SYSTEM_TENANT): ProxyConnection {
    const session_id = sessionId ?? randomUUID();
    const now = new Date();
    const c: ProxyConnection = {
      connection_id: randomUUID(),
      session_id,
      client_ip: clientIp,
      target_service_id: null,
      target_service: null,
      routing_strategy: null,
      rule_id: null,
      status: 'active',
      connected_at: now,
      last_activity: now.getTime(),
      closed_at: null,
      close_reason: null,
      bytes_sent: 0,
      bytes_received: 0,
      messages_sent: 0,
      messages_received: 0,
      switches: 0,
      counters: null,
      tenant,
      session_tenant: null,
    };
    this.active.set(c.connection_id, c);
    this.peak = Math.max(this.peak, this.active.size);
    return c;
  }

  /** The service a connection's session last used, if the session is known. */
  stickyService(c: Pick<ProxyConnection, 'session_id' | 'tenant'>): string | null {
    return this.sessions.get(sessionKey(c))?.service_id ?? null;
  }

  /**
   * Binds a connection (and its session) to a service. Each bind is a connection to that
   * service: the first, and each fail-over's (the session moves with it).
   */
  bind(
    c: ProxyConnection,
    service: { id: string; name: string; tenant_id?: string },
    strategy: string,
    ruleId: string | null,
  ): void {
    const previous = c.target_service_id;
    if (previous) this.countersOf(previous).active_connections--;
    if (previous && previous !== service.id) c.switches++;
    const key = sessionKey(c);
    if (!previous) c.session_tenant = c.tenant === SYSTEM_TENANT ? (service.tenant_id ?? DEFAULT_TENANT) : c.tenant;
    const tenant = c.session_tenant as string;
    if (!previous) {
      this.store(key, () => this.stored.openConnection(c.session_id, service.id, INSTANCE_ID, tenant));
      // As the system: the hub's level sums every tenant's sessions.
      this.store(key, () => runAsSystem(() => this.stored.recordPeak(tenant, utcDay())));
    } else this.store(key, () => this.stored.rebind(c.session_id, service.id, tenant));
    c.target_service_id = service.id;
    c.target_service = service.name;
    c.routing_strategy = strategy;
    c.rule_id = ruleId;
    const counters = this.countersOf(service.id);
    c.counters = counters;
    counters.openedSinceSample++;
    counters.active_connections++;

    let session = this.sessions.get(key);
    if (!session) {
      session = { id: c.session_id, service_id: null, started_at: Date.now(), open: 0 };
      this.sessions.set(key, session);
      this.trimSessions();
    } else if (session.open === 0 && !previous) {
      session.started_at = Date.now();
    }
    // An open session that moves (fail-over) is active at its new service.
    if (session.open > 0 && session.service_id && session.service_id !== service.id) {
      this.countersOf(session.service_id).active_sessions--;
      counters.active_sessions++;
    }
    if (!previous && session.open++ === 0) counters.active_sessions++;
    session.service_id = service.id;
  }

  received(c: ProxyConnection, bytes: number): void {
    c.bytes_received += bytes;
    c.messages_received++;
    c.last_activity = Date.now();
    this.countMessage(c);
  }

  sent(c: ProxyConnection, bytes: number): void {
    c.bytes_sent += bytes;
    c.messages_sent++;
    c.last_activity = Date.now();
    this.countMessage(c);
  }

  /** The agent answered a client message after `ms` (see AgentProxy: request/response timing). */
  answered(c: ProxyConnection, ms: number): void {
    if (!c.counters) return;
    c.counters.responsesSinceSample++;
    c.counters.responseMsSinceSample += ms;
  }

  error(serviceId: string | null): void {
    if (!serviceId) return;
    this.countersOf(serviceId).errorsSinceSample++;
    this.store(serviceId, () => this.stored.countError(serviceId));
  }

  close(c: ProxyConnection, reason: string): void {
    if (c.status === 'closed') return;
    c.status = 'closed';
    c.closed_at = new Date();
    c.close_reason = reason;
    this.active.delete(c.connection_id);
    this.closed.push(c);
    if (this.closed.length > KEEP_CLOSED) this.closed.splice(0, this.closed.length - KEEP_CLOSED);
    if (!c.target_service_id) return;
    this.countersOf(c.target_service_id).active_connections--;
    const key = sessionKey(c);
    const tenant = c.session_tenant as string;
    this.store(key, () => this.stored.closeConnection(c.session_id, tenant));
    const session = this.sessions.get(key);
    if (session?.service_id && --session.open === 0) this.countersOf(session.service_id).active_sessions--;
  }

  get(id: string): ProxyConnection | undefined {
    return this.active.get(id) ?? this.closed.find((c) => c.connection_id === id);
  }

  /** Newest first; `visible` (null: all) holds the caller's services: a connection not yet routed is the system's. */
  list(filter: {
    serviceId?: string;
    status?: ConnectionStatus;
    visible?: ReadonlySet<string> | null;
  }): ProxyConnection[] {
    const { visible } = filter;
    const pool =
      filter.status === 'active'
        ? [...this.active.values()]
        : filter.status === 'closed'
          ? this.closed
          : [...this.active.values(), ...this.closed];
    return pool
      .filter((c) => !filter.serviceId || c.target_service_id === filter.serviceId)
      .filter((c) => !visible || (c.target_service_id !== null && visible.has(c.target_service_id)))
      .sort((a, b) => b.connected_at.getTime() - a.connected_at.getTime());
  }

  /** Counts a connection in progress against a service until `release`. */
  reserve(serviceId: string): void {
    this.reserved.set(serviceId, (this.reserved.get(serviceId) ?? 0) + 1);
  }

  release(serviceId: string): void {
    const n = (this.reserved.get(serviceId) ?? 0) - 1;
    if (n > 0) this.reserved.set(serviceId, n);
    else this.reserved.delete(serviceId);
  }

  /** Open plus reserved connections of a service: the load routing and max_sessions see. */
  load(serviceId: string): number {
    return this.activeCount(serviceId) + (this.reserved.get(serviceId) ?? 0);
  }

  activeCount(serviceId?: string): number {
    return serviceId ? (this.counters.get(serviceId)?.active_connections ?? 0) : this.active.size;
  }

  activeSessions(serviceId?: string): number {
    if (serviceId) return this.counters.get(serviceId)?.active_sessions ?? 0;
    let n = 0;
    for (const c of this.counters.values()) n += c.active_sessions;
    return n;
  }

  countersOf(serviceId: string): ServiceCounters {
    let c = this.counters.get(serviceId);
    if (!c) this.counters.set(serviceId, (c = newCounters()));
    return c;
  }

  /** Per-service counters known to this process. */
  allCounters(): Map<string, ServiceCounters> {
    return this.counters;
  }

  forget(serviceId: string): void {
    this.counters.delete(serviceId);
  }

  /** Queues a stored write after the previous one of the same key; a failure is logged, never thrown. */
  private store(key: string, write: () => Promise<void>): void {
    const next = (this.writes.get(key) ?? Promise.resolve())
      .then(write)
      .catch((e: unknown) => this.logger.warn({ err: e }, `could not store proxy stats for ${key}`));
    this.writes.set(key, next);
    void next.then(() => {
      if (this.writes.get(key) === next) this.writes.delete(key);
    });
  }

  private countMessage(c: ProxyConnection): void {
    if (c.counters) c.counters.messagesSinceSample++;
  }

  private trimSessions(): void {
    if (this.sessions.size <= KEEP_SESSIONS) return;
    for (const [id, s] of this.sessions) {
      if (s.open === 0) this.sessions.delete(id);
      if (this.sessions.size <= KEEP_SESSIONS) return;
    }
  }
}
