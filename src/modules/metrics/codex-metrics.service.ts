import { Injectable } from '@nestjs/common';
import { codexMetricsView } from '../../compat/codex/codex-system.view.js';
import type { CodexMetricsData } from '../../contracts/sockets/ws-stream.js';
import { runWithTenantSetting } from '../../database/tenant-context.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { HealthService } from './health.service.js';

/**
 * The seed 000 metrics document (`GET /metrics` JSON, `/ws` `metrics_update`): task statistics
 * of the caller's tenant (row-level security, in its context) plus this process.
 */
@Injectable()
export class CodexMetricsService {
  constructor(
    private readonly taskQueries: TaskQueriesService,
    private readonly health: HealthService,
  ) {}

  async document(): Promise<CodexMetricsData> {
    const stats = await this.taskQueries.statistics({ period: '1h', interval: 'hour' });
    return codexMetricsView(stats.counts, {
      rssBytes: process.memoryUsage().rss,
      cpuPercent: this.health.cpuPercent(),
      uptimeSeconds: process.uptime(),
    });
  }

  /** The document as a tenant ('*': the whole hub) sees it, from any context (a periodic push). */
  documentFor(tenantSetting: string): Promise<CodexMetricsData> {
    return runWithTenantSetting(tenantSetting, () => this.document());
  }
}
