import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { HubInstancesRepository } from './hub-instances.repository.js';
import { HubInstances } from './hub-instances.service.js';
import { LiveConnections } from './live-connections.js';
import { NodesController } from './nodes.controller.js';
import { NodesRepository } from './nodes.repository.js';
import { NodesService } from './nodes.service.js';

@Module({
  imports: [TasksModule],
  controllers: [NodesController],
  providers: [NodesRepository, NodesService, LiveConnections, HubInstancesRepository, HubInstances],
  exports: [NodesService, LiveConnections, HubInstances],
})
export class NodesModule {}
