import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EventBus } from '../../common/events/event-bus.js';
import { DatabaseStatus } from '../../database/database-status.js';
import { runAsSystem, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { ConnectionRegistry } from '../agent-services/proxy/connection-registry.js';
import { LlmGateway } from '../llm/llm-gateway.service.js';
import { DispatchMetrics } from '../dispatch/dispatch-metrics.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { LiveConnections } from '../nodes/live-connections.js';
import { RAW_WS_CONNECTION_PREFIX } from '../nodes/node.types.js';
import { RetentionMetrics } from '../retention/retention-metrics.js';
import { TaskQueueGaugesRepository } from '../tasks/task-queue-gauges.repository.js';
import type { TaskRow } from '../tasks/task.types.js';
import { BoundedLabel } from './bounded-labels.js';
import { HubStatusService } from './hub-status.service.js';
import { type ScrapeReads, scrapeRegistry } from './scrape-series.js';
import { onlyTenantSeries } from './tenant-series.js';

/**
 * How many distinct (tenant, task type) pairs keep their type as a label on the per-type
 * histograms of this process; later pairs are `type="other"` (bounded-labels.ts). 2 histograms
 * × ~15 buckets × (100 + one `other` per tenant) series at most.
 */
export const TASK_TYPE_LABEL_LIMIT = 100;

/**
 * The channel label of taskhub_socket_connections for the names the channels register under
 * (the same words as taskhub_edge_refused_total's `channel`).
 */
const SOCKET_CHANNEL: Record<string, string> = { node_channel: 'node', log_channel: 'log' };

const seconds = (from: Date | null, to: Date | null): number | undefined =>
  from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : undefined;

/**
 * Prometheus metrics (every series: docs/observability.md, "Metrics"). Counters and histograms
 * follow the domain events; task, node and queue counts are read at scrape time (exposition),
 * so a scrape never sees a drifted counter. Process metrics keep their standard names.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  readonly registry = new Registry();
  private readonly clientCounters = new Map<string, () => number>();
  private unsubscribe: (() => void)[] = [];
  private readonly taskTypes = new BoundedLabel(TASK_TYPE_LABEL_LIMIT);

  readonly submitted = new Counter({
    name: 'taskhub_tasks_submitted_total',
    help: 'Tasks accepted',
    registers: [this.registry],
  });
  readonly completed = new Counter({
    name: 'taskhub_tasks_completed_total',
    help: 'Tasks completed',
    registers: [this.registry],
  });
  readonly failed = new Counter({
    name: 'taskhub_tasks_failed_total',
    help: 'Failed attempts (retrying=true went back to the queue)',
    labelNames: ['retrying'],
    registers: [this.registry],
  });
  readonly pickup = new Histogram({
    name: 'taskhub_task_pickup_seconds',
    help: 'From ready (run_at) to handed to a node or pull worker, by tenant and task type',
    labelNames: ['tenant', 'type'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly runTime = new Histogram({
    name: 'taskhub_task_run_seconds',
    help: 'From hand-out to completion of completed tasks, by tenant and task type',
    labelNames: ['tenant', 'type'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'taskhub_http_request_duration_seconds',
    help: 'HTTP request duration by method, matched route (never the raw URL) and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(
    private readonly events: EventBus,
    private readonly status: HubStatusService,
    private readonly queues: TaskQueueGaugesRepository,
    private readonly database: DatabaseStatus,
    private readonly moduleRef: ModuleRef,
    live: LiveConnections,
    edge: EdgeMetrics,
    retention: RetentionMetrics,
    dispatch: DispatchMetrics,
  ) {
    collectDefaultMetrics({ register: this.registry });
    for (const counter of edge.all()) this.registry.registerMetric(counter);
    for (const metric of retention.all()) this.registry.registerMetric(metric);
    this.registry.registerMetric(dispatch.round);
    // Socket.IO devices and nodes: the live connections that are not raw WebSocket ones (those are `node`).
    this.registerClientCounter('device', () => {
      let n = 0;
      for (const id of live.list()) if (!id.startsWith(RAW_WS_CONNECTION_PREFIX)) n++;
      return n;
    });
    const sockets: Gauge<'channel'> = new Gauge({
      name: 'taskhub_socket_connections',
      help: 'Open socket connections on this process by channel (device, node, log, ws, events, proxy)',
      labelNames: ['channel'],
      registers: [this.registry],
      collect: () => {
        for (const [channel, count] of this.clientCounters)
          sockets.set({ channel: SOCKET_CHANNEL[channel] ?? channel }, count());
      },
    });
    const slotWaiting: Gauge = new Gauge({
      name: 'taskhub_llm_slot_waiting',
      help: 'Gateway requests waiting on this process for a deployment slot (max_concurrency; docs/llm.md)',
      registers: [this.registry],
      // Looked up when scraped: the gateway's own graph reaches back to this service.
      collect: () => slotWaiting.set(this.moduleRef.get(LlmGateway, { strict: false }).waiting),
    });
    const databaseUp: Gauge = new Gauge({
      name: 'taskhub_database_up',
      help: '1 while this process reaches PostgreSQL, 0 during an outage (its probe brings it back)',
      registers: [this.registry],
      collect: () => databaseUp.set(this.database.isUp ? 1 : 0),
    });
  }

  /**
   * The Prometheus text as one tenant setting sees it (docs/security.md). `*` (the scrape
   * token, a global admin): every tenant's series and the hub totals. A tenant: the process
   * series without other tenants' `tenant`-labelled samples, its own counts and queues, and
   * totals that are its own. The counts are one read as the system per scrape (grouped by
   * tenant), so the totals are exactly the sums. During a database outage the process series
   * are still served (with taskhub_database_up 0) and the counts are left out.
   */
  async exposition(tenantSetting: string): Promise<string> {
    const reads = await this.readCounts();
    const all = tenantSetting === SYSTEM_TENANT;
    let text = await this.registry.metrics();
    if (!all) text = onlyTenantSeries(text, tenantSetting);
    if (!reads) return text;
    const shown: ScrapeReads = all
      ? reads
      : {
          byTenant: reads.byTenant.filter(([tenant]) => tenant === tenantSetting),
          queues: reads.queues.filter((q) => q.tenant_id === tenantSetting),
        };
    return `${text.endsWith('\n') ? text : `${text}\n`}${await scrapeRegistry(shown).metrics()}`;
  }

  /** Every tenant's counts and queues, as the system; undefined when the database is unreachable. */
  private async readCounts(): Promise<ScrapeReads | undefined> {
    try {
      const [byTenant, queues] = await Promise.all([
        this.status.byTenant(),
        runAsSystem(() => this.queues.pendingQueues()),
      ]);
      return { byTenant: [...byTenant], queues };
    } catch (e) {
      if (!this.database.failed(e)) throw e;
      return undefined;
    }
  }

  onModuleInit(): void {
    this.unsubscribe = [
      this.events.on('task.created', () => this.submitted.inc()),
      this.events.on('task.completed', ({ task }) => {
        this.completed.inc();
        const run = seconds(task.dispatched_at ?? task.started_at, task.completed_at);
        if (run !== undefined) this.runTime.observe(this.typeLabels(task), run);
      }),
      this.events.on('task.failed', ({ retrying }) => this.failed.inc({ retrying: String(retrying) })),
      this.events.on('task.assigned', ({ task }) => this.observePickup(task)),
      this.events.on('task.started', ({ task }) => this.observePickup(task)),
    ];
  }

  /**
   * Agent proxy sessions: the registry is the agent-services module's own (not exported, and
   * that module must not depend on this one), looked up once the app is built. Absent in an
   * app without the proxy.
   */
  onApplicationBootstrap(): void {
    let proxies: ConnectionRegistry;
    try {
      proxies = this.moduleRef.get(ConnectionRegistry, { strict: false });
    } catch {
      return;
    }
    this.registerClientCounter('proxy', () => proxies.activeCount());
  }

  /** The bounded labels of a task's per-type series (never its id). */
  private typeLabels(task: TaskRow): { tenant: string; type: string } {
    return { tenant: task.tenant_id, type: this.taskTypes.of(task.type, task.tenant_id) };
  }

  private observePickup(task: TaskRow): void {
    const s = seconds(task.run_at, task.dispatched_at);
    if (s !== undefined) this.pickup.observe(this.typeLabels(task), s);
  }

  /** The realtime module reports its live connection counts here. */
  registerClientCounter(channel: string, count: () => number): void {
    this.clientCounters.set(channel, count);
  }

  /** Socket connections of every channel held by this process now. */
  activeConnections(): number {
    let n = 0;
    for (const count of this.clientCounters.values()) n += count();
    return n;
  }

  onApplicationShutdown(): void {
    this.unsubscribe.forEach((u) => u());
  }
}
