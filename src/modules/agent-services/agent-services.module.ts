import { AgentRetention } from './agent-retention.js';
import { Module } from '@nestjs/common';
import { RoutingModule } from '../routing/routing.module.js';
import { AgentServicesRepository } from './agent-services.repository.js';
import { AgentServicesService } from './agent-services.service.js';
import { ConnectionsController } from './connections.controller.js';
import { HealthMonitor } from './health-monitor.service.js';
import { ProcessSupervisor } from './process-supervisor.js';
import { AgentProxy } from './proxy/agent-proxy.service.js';
import { ConnectionRegistry } from './proxy/connection-registry.js';
import { ServiceHealthController } from './service-health.controller.js';
import { ServiceLifecycle } from './service-lifecycle.service.js';
import { ServiceLogStore } from './service-logs.store.js';
import { ServiceLogsController } from './service-logs.controller.js';
import { ServiceStatsController } from './service-stats.controller.js';
import { ServiceStatsService } from './service-stats.service.js';
import { ServicesController } from './services.controller.js';
import { SessionStatsRepository } from './session-stats.repository.js';
import { StatsRepository } from './stats.repository.js';

/** Seed 003: agent-service registry, managed processes, health, logs, stats and the WebSocket proxy. */
@Module({
  imports: [RoutingModule],
  controllers: [
    ServicesController,
    ServiceHealthController,
    ServiceLogsController,
    ServiceStatsController,
    ConnectionsController,
  ],
  providers: [
    AgentServicesRepository,
    StatsRepository,
    SessionStatsRepository,
    ServiceLogStore,
    ProcessSupervisor,
    ServiceLifecycle,
    HealthMonitor,
    ConnectionRegistry,
    AgentProxy,
    AgentServicesService,
    ServiceStatsService,
    AgentRetention,
  ],
  exports: [AgentProxy],
})
export class AgentServicesModule {}
