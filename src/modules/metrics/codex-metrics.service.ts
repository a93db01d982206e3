import { Injectable } from '@nestjs/common';
import { codexMetricsView } from '../../compat/codex/codex-system.view.js';
import type { CodexMetricsData } from '../../contracts/sockets/ws-stream.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { HealthService } from './health.service.js';

/** The seed 000 metrics document (`GET /metrics` JSON, `/ws` `metrics_update`): task statistics plus this process. */
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
}
