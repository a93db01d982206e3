import { Injectable, type OnModuleInit } from '@nestjs/common';
import { parseDuration } from '../../common/duration.js';
import { AppConfig } from '../../config/app-config.js';
import { type RetentionBatch, untilShort } from '../retention/retention-policy.js';
import { RetentionRegistry } from '../retention/retention-registry.js';
import type { TenantLimits } from '../tenants/tenant.types.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { TaskRetentionRepository } from './task-retention.repository.js';
import { TaskWaiters } from './task-waiters.js';

/** Events looked at per query when finding tasks past TASK_EVENTS_MAX_PER_TASK. */
const EVENT_CHUNK = 50_000;

/** A tenant's bounds on finished tasks: its own `limits.retention`, else the hub's settings. */
export function tenantRetention(
  limits: TenantLimits,
  hub: { ageSeconds: number; maxFinished: number },
): { ageSeconds: number; maxFinished: number } {
  const own = limits.retention ?? {};
  const age = own.age === undefined ? undefined : parseDuration(own.age);
  return { ageSeconds: age ?? hub.ageSeconds, maxFinished: own.max_finished ?? hub.maxFinished };
}

/**
 * Task retention (docs/retention.md), two policies of the cleaner:
 * - `tasks`: finished tasks (and their events) past their tenant's age or count bound. Never
 *   one finished less than TASK_RETENTION_GRACE ago (a `wait_seconds` poll on any hub, at most
 *   60 s, still finds it), one a request of this hub waits on, one that awaited a plugin within
 *   PLUGIN_DELIVERY_RETENTION (the plugin's retried delivery is answered `duplicate`, not 404),
 *   nor any unfinished task: pending, dispatched and running ones (awaiting a callback or a
 *   reply) are never looked at.
 * - `task_events`: a task's events past TASK_EVENTS_MAX_PER_TASK (the oldest go), checked for
 *   the tasks that had events since the last pass.
 */
@Injectable()
export class TaskRetention implements OnModuleInit {
  /** The last event id the per-task cap looked at (per process: the first pass looks back EVENT_CHUNK events). */
  private eventsSince?: number;

  constructor(
    private readonly config: AppConfig,
    private readonly repo: TaskRetentionRepository,
    private readonly tenants: TenantsService,
    private readonly waiters: TaskWaiters,
    private readonly registry: RetentionRegistry,
  ) {}

  onModuleInit(): void {
    this.registry.register({ name: 'tasks', batches: (n) => this.finishedTasks(n) });
    this.registry.register({ name: 'task_events', batches: (n) => this.eventsPastCap(n) });
  }

  private async *finishedTasks(limit: number): AsyncGenerator<RetentionBatch> {
    const hub = {
      ageSeconds: parseDuration(this.config.TASK_RETENTION) ?? 0,
      maxFinished: this.config.TASK_RETENTION_MAX_FINISHED,
    };
    const grace = parseDuration(this.config.TASK_RETENTION_GRACE) ?? 0;
    const awaitedSeconds = Math.max(grace, parseDuration(this.config.PLUGIN_DELIVERY_RETENTION) ?? 0);
    for (const tenant of await this.tenants.allLimits()) {
      const { ageSeconds, maxFinished } = tenantRetention(tenant.limits, hub);
      const base = { tenantId: tenant.id, awaitedSeconds, limit };
      const run = (olderThanSeconds: number, edge?: { finished: string; id: string }) =>
        untilShort('tasks', limit, async () => {
          const waited = this.waiters.waitedIds();
          const r = await this.repo.deleteFinished({ ...base, olderThanSeconds, edge, waited });
          return { n: r.tasks, also: { task_events: r.events } };
        });
      if (maxFinished > 0) {
        const edge = await this.repo.countEdge(tenant.id, maxFinished);
        if (edge) yield* run(grace, edge);
      }
      if (ageSeconds > 0) yield* run(Math.max(ageSeconds, grace));
    }
  }

  private async *eventsPastCap(limit: number): AsyncGenerator<RetentionBatch> {
    const cap = this.config.TASK_EVENTS_MAX_PER_TASK;
    if (cap === 0) return;
    this.eventsSince ??= Math.max(0, (await this.repo.lastEventId()) - EVENT_CHUNK);
    for (;;) {
      const { upto, seen, over } = await this.repo.tasksOverCap(this.eventsSince, EVENT_CHUNK, cap);
      for (const { task_id, edge } of over)
        yield* untilShort('task_events', limit, async () => ({ n: await this.repo.trimEvents(task_id, edge, limit) }));
      this.eventsSince = upto;
      if (seen < EVENT_CHUNK) return;
    }
  }
}
