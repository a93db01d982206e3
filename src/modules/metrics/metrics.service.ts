import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EventBus } from '../../common/events/event-bus.js';
import { SYSTEM_TENANT } from '../../database/tenant-context.js';
import { TASK_STATES } from '../tasks/task.types.js';
import { HubStatusService, type TenantCounts } from './hub-status.service.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { RetentionMetrics } from '../retention/retention-metrics.js';

const seconds = (from: Date | null, to: Date | null): number | undefined =>
  from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : undefined;

/**
 * Prometheus metrics. Counters and histograms follow the domain events; the task and node
 * counts are read at scrape time (exposition), so a scrape never sees a drifted counter.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnApplicationShutdown {
  readonly registry = new Registry();
  private readonly clientCounters = new Map<string, () => number>();
  private unsubscribe: (() => void)[] = [];

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
  readonly dispatchLatency = new Histogram({
    name: 'taskhub_dispatch_latency_seconds',
    help: 'From ready (run_at) to handed to a node or worker',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly runTime = new Histogram({
    name: 'taskhub_task_run_seconds',
    help: 'From hand-out to completion',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'taskhub_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(
    private readonly events: EventBus,
    private readonly status: HubStatusService,
    edge: EdgeMetrics,
    retention: RetentionMetrics,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'taskhub_' });
    for (const counter of edge.all()) this.registry.registerMetric(counter);
    for (const metric of retention.all()) this.registry.registerMetric(metric);
    const clients: Gauge<'channel'> = new Gauge({
      name: 'taskhub_clients_connected',
      help: 'Event stream clients (/ws and /events) on this process',
      labelNames: ['channel'],
      registers: [this.registry],
      collect: () => {
        for (const [channel, count] of this.clientCounters) clients.set({ channel }, count());
      },
    });
  }

  /**
   * The Prometheus text as one tenant setting sees it (docs/security.md): the process series of
   * `registry`, then the task and node counts. `*` (the scrape token, a global admin): every
   * tenant's series and the hub totals; a tenant: its own series only, and totals that are its
   * own. The counts are one read as the system per scrape (grouped by tenant), so the totals are
   * exactly the sums; they go into a registry of this scrape alone, so concurrent scrapes for
   * different tenants never see each other's values.
   */
  async exposition(tenantSetting: string): Promise<string> {
    const byTenant = [...(await this.status.byTenant())];
    const shown = tenantSetting === SYSTEM_TENANT ? byTenant : byTenant.filter(([tenant]) => tenant === tenantSetting);
    return Registry.merge([this.registry, countsRegistry(shown)]).metrics();
  }

  onModuleInit(): void {
    this.unsubscribe = [
      this.events.on('task.created', () => this.submitted.inc()),
      this.events.on('task.completed', ({ task }) => {
        this.completed.inc();
        const run = seconds(task.dispatched_at ?? task.started_at, task.completed_at);
        if (run !== undefined) this.runTime.observe(run);
      }),
      this.events.on('task.failed', ({ retrying }) => this.failed.inc({ retrying: String(retrying) })),
      this.events.on('task.assigned', ({ task }) => this.observeDispatch(task.run_at, task.dispatched_at)),
      this.events.on('task.started', ({ task }) => this.observeDispatch(task.run_at, task.dispatched_at)),
    ];
  }

  private observeDispatch(readyAt: Date, handedAt: Date | null): void {
    const s = seconds(readyAt, handedAt);
    if (s !== undefined) this.dispatchLatency.observe(s);
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

/**
 * The task and node counts of one scrape. Per tenant in separate metrics, not as an extra label
 * on the totals: a sum() over one metric must not count every task twice.
 */
function countsRegistry(byTenant: [string, TenantCounts][]): Registry {
  const registers = [new Registry()];
  const tasks = new Gauge({ name: 'taskhub_tasks', help: 'Tasks by status', labelNames: ['status'], registers });
  const nodes = new Gauge({ name: 'taskhub_nodes_connected', help: 'Devices and nodes online', registers });
  const tenantTasks = new Gauge({
    name: 'taskhub_tenant_tasks',
    help: 'Tasks by tenant and status (they sum to taskhub_tasks)',
    labelNames: ['tenant', 'status'],
    registers,
  });
  const tenantNodes = new Gauge({
    name: 'taskhub_tenant_nodes_connected',
    help: 'Devices and nodes online by tenant (they sum to taskhub_nodes_connected)',
    labelNames: ['tenant'],
    registers,
  });
  const totals = new Map<string, number>(TASK_STATES.map((status) => [status, 0]));
  let online = 0;
  for (const [tenant, counts] of byTenant) {
    for (const [status, n] of Object.entries(counts.tasks)) {
      tenantTasks.set({ tenant, status }, n);
      totals.set(status, (totals.get(status) ?? 0) + n);
    }
    tenantNodes.set({ tenant }, counts.nodes.online);
    online += counts.nodes.online;
  }
  for (const [status, n] of totals) tasks.set({ status }, n);
  nodes.set(online);
  return registers[0];
}
