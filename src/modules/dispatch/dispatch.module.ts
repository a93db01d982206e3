import { Module } from '@nestjs/common';
import { NodesModule } from '../nodes/nodes.module.js';
import { RoutingModule } from '../routing/routing.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { DispatchRepository } from './dispatch.repository.js';
import { Dispatcher } from './dispatcher.service.js';
import { NodeLiveness } from './node-liveness.service.js';
import { WakeupChannel } from './wakeup-channel.service.js';

@Module({
  imports: [TasksModule, NodesModule, RoutingModule],
  providers: [DispatchRepository, Dispatcher, NodeLiveness, WakeupChannel],
  exports: [Dispatcher, NodeLiveness],
})
export class DispatchModule {}
