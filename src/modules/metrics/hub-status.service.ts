import { Injectable } from '@nestjs/common';
import { PACKAGE } from '../../common/package-info.js';
import { runAsSystem, runWithTenantSetting } from '../../database/tenant-context.js';
import { NodesService } from '../nodes/nodes.service.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import type { TaskState } from '../tasks/task.types.js';

import type { HubStatus } from '../../contracts/sockets/events.js';

export type { HubStatus } from '../../contracts/sockets/events.js';

/** One tenant's share of the hub: its tasks by state and its nodes. */
export interface TenantCounts {
  tasks: Record<TaskState, number>;
  nodes: { online: number; total: number };
}

/**
 * A small snapshot for `get_status` and `metrics_update`: task counts by state and nodes online.
 * Counts are the caller's tenant's (row-level security filters them in its context; the system
 * sees the whole hub). Work outside a caller's context (a periodic push) takes snapshotFor.
 */
@Injectable()
export class HubStatusService {
  constructor(
    private readonly taskQueries: TaskQueriesService,
    private readonly nodes: NodesService,
  ) {}

  async snapshot(): Promise<HubStatus> {
    const [tasks, nodes] = await Promise.all([this.taskQueries.countByStatus(), this.nodes.countOnline()]);
    return {
      version: PACKAGE.version,
      uptime: Math.round(process.uptime()),
      tasks,
      nodes,
      timestamp: new Date().toISOString(),
    };
  }

  /** The snapshot as a tenant ('*': the whole hub) sees it, from any context. */
  snapshotFor(tenantSetting: string): Promise<HubStatus> {
    return runWithTenantSetting(tenantSetting, () => this.snapshot());
  }

  /** Every tenant's counts, read as the system (the Prometheus gauges); tenants with no rows are absent. */
  async byTenant(): Promise<Map<string, TenantCounts>> {
    const [tasks, nodes] = await runAsSystem(() =>
      Promise.all([this.taskQueries.countByTenantAndStatus(), this.nodes.countOnlineByTenant()]),
    );
    const out = new Map<string, TenantCounts>();
    const entry = (tenant: string): TenantCounts => {
      let e = out.get(tenant);
      if (!e) {
        e = {
          tasks: { pending: 0, dispatched: 0, running: 0, completed: 0, failed: 0, cancelled: 0, timed_out: 0 },
          nodes: { online: 0, total: 0 },
        };
        out.set(tenant, e);
      }
      return e;
    };
    for (const [tenant, counts] of tasks) entry(tenant).tasks = counts;
    for (const n of nodes) entry(n.tenant_id).nodes = { online: n.online, total: n.total };
    return out;
  }
}
