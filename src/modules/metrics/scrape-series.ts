import { Gauge, Registry } from 'prom-client';
import type { QueueGaugeRow } from '../tasks/task-queue-gauges.repository.js';
import { priorityName, TASK_STATES } from '../tasks/task.types.js';
import type { TenantCounts } from './hub-status.service.js';

/** What one scrape reads from PostgreSQL, already limited to the tenants the caller may see. */
export interface ScrapeReads {
  byTenant: [string, TenantCounts][];
  queues: QueueGaugeRow[];
}

/**
 * The series of one scrape, read from the database: task and node counts, queue depth and
 * age. They go into a registry of this scrape alone, so concurrent scrapes for different
 * tenants never see each other's values. Per tenant in separate metrics, not as an extra label
 * on the totals: a sum() over one metric must not count every task twice.
 */
export function scrapeRegistry({ byTenant, queues }: ScrapeReads): Registry {
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
  const depth = new Gauge({
    name: 'taskhub_queue_depth',
    help: 'Pending tasks (delayed ones included) by tenant and priority',
    labelNames: ['tenant', 'priority'],
    registers,
  });
  const age = new Gauge({
    name: 'taskhub_queue_oldest_age_seconds',
    help: 'How long the oldest ready pending task has waited since it became ready (run_at), by tenant and priority',
    labelNames: ['tenant', 'priority'],
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
  for (const q of queues) {
    const labels = { tenant: q.tenant_id, priority: priorityName(q.priority) };
    depth.set(labels, q.depth);
    age.set(labels, q.oldest_age_seconds);
  }
  return registers[0];
}
