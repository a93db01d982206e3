import { Module } from '@nestjs/common';
import { DispatchModule } from '../dispatch/dispatch.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { NodesModule } from '../nodes/nodes.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { CodexMetricsService } from './codex-metrics.service.js';
import { HealthController } from './health.controller.js';
import { HealthService } from './health.service.js';
import { HubStatusService } from './hub-status.service.js';
import { MetricsService } from './metrics.service.js';
import { ShutdownService } from './shutdown.service.js';
import { StatisticsController } from './statistics.controller.js';
import { SystemController } from './system.controller.js';

@Module({
  imports: [TasksModule, NodesModule, LlmModule, DispatchModule],
  controllers: [HealthController, SystemController, StatisticsController],
  providers: [CodexMetricsService, HealthService, HubStatusService, MetricsService, ShutdownService],
  exports: [CodexMetricsService, HubStatusService, MetricsService, ShutdownService],
})
export class MetricsModule {}
