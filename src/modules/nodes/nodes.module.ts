import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { HubInstancesRepository } from './hub-instances.repository.js';
import { HubInstances } from './hub-instances.service.js';
import { LiveConnections } from './live-connections.js';
import { NodeLogsController } from './node-logs.controller.js';
import { NodeLogsRepository } from './node-logs.repository.js';
import { NodeLogsService } from './node-logs.service.js';
import { NodesController } from './nodes.controller.js';
import { NodesRepository } from './nodes.repository.js';
import { NodesService } from './nodes.service.js';

@Module({
  imports: [TasksModule],
  controllers: [NodesController, NodeLogsController],
  providers: [
    NodesRepository,
    NodesService,
    NodeLogsRepository,
    NodeLogsService,
    LiveConnections,
    HubInstancesRepository,
    HubInstances,
  ],
  exports: [NodesService, NodeLogsService, LiveConnections, HubInstances],
})
export class NodesModule {}
