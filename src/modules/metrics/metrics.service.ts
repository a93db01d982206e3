import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EventBus } from '../../common/events/event-bus.js';
import { TASK_STATES } from '../tasks/task.types.js';
import { HubStatusService, type TenantCounts } from './hub-status.service.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';

const seconds = (from: Date | null, to: Date | null): number | undefined =>
  from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : undefined;

/**
 * Prometheus metrics. Counters and histograms follow the domain events; gauges that
 * describe the whole hub (tasks by status, nodes, clients) are read at scrape time, so a
 * scrape never sees a drifted counter.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnApplicationShutdown {
  readonly registry = new Registry();
  private readonly clientCounters = new Map<string, () => number>();
  private unsubscribe: (() => void)[] = [];
  private scrape?: Promise<Map<string, TenantCounts>>;

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
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'taskhub_' });
    for (const counter of edge.all()) this.registry.registerMetric(counter);
    // Totals and per-tenant series come from one read per scrape (as the system, whoever
    // scrapes; prom-client collects the gauges in parallel, so they share it), so the totals are
    // exactly the sums. Per tenant in separate metrics, not as an extra label on the totals: a
    // sum() over one metric must not count every task twice.
    const tasks: Gauge<'status'> = new Gauge({
      name: 'taskhub_tasks',
      help: 'Tasks by status',
      labelNames: ['status'],
      registers: [this.registry],
      collect: async () => {
        const totals: Record<string, number> = {};
        for (const status of TASK_STATES) totals[status] = 0;
        for (const counts of (await this.tenantCounts()).values())
          for (const [status, n] of Object.entries(counts.tasks)) totals[status] += n;
        for (const [status, n] of Object.entries(totals)) tasks.set({ status }, n);
      },
    });
    const nodes = new Gauge({
      name: 'taskhub_nodes_connected',
      help: 'Devices and nodes online',
      registers: [this.registry],
      collect: async () => {
        let online = 0;
        for (const counts of (await this.tenantCounts()).values()) online += counts.nodes.online;
        nodes.set(online);
      },
    });
    const tenantTasks: Gauge<'tenant' | 'status'> = new Gauge({
      name: 'taskhub_tenant_tasks',
      help: 'Tasks by tenant and status (they sum to taskhub_tasks)',
      labelNames: ['tenant', 'status'],
      registers: [this.registry],
      collect: async () => {
        const byTenant = await this.tenantCounts();
        tenantTasks.reset(); // a deleted tenant's series go
        for (const [tenant, counts] of byTenant)
          for (const [status, n] of Object.entries(counts.tasks)) tenantTasks.set({ tenant, status }, n);
      },
    });
    const tenantNodes: Gauge<'tenant'> = new Gauge({
      name: 'taskhub_tenant_nodes_connected',
      help: 'Devices and nodes online by tenant (they sum to taskhub_nodes_connected)',
      labelNames: ['tenant'],
      registers: [this.registry],
      collect: async () => {
        const byTenant = await this.tenantCounts();
        tenantNodes.reset();
        for (const [tenant, counts] of byTenant) tenantNodes.set({ tenant }, counts.nodes.online);
      },
    });
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

  /** The counts of the scrape in progress: the first gauge to collect reads them, the others wait for that read. */
  private tenantCounts(): Promise<Map<string, TenantCounts>> {
    if (!this.scrape) {
      this.scrape = this.status.byTenant();
      const clear = (): void => void (this.scrape = undefined);
      this.scrape.then(clear, clear);
    }
    return this.scrape;
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
