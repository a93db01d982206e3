import { Module } from '@nestjs/common';
import { NodesModule } from '../nodes/nodes.module.js';
import { RoutingModule } from '../routing/routing.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { DispatchMetrics } from './dispatch-metrics.js';
import { DispatchRound } from './dispatch-round.js';
import { Dispatcher } from './dispatcher.service.js';
import { NodeLiveness } from './node-liveness.service.js';
import { WakeupChannel } from './wakeup-channel.service.js';

@Module({
  imports: [TasksModule, NodesModule, RoutingModule, TenantsModule],
  providers: [DispatchRound, Dispatcher, NodeLiveness, WakeupChannel, DispatchMetrics],
  exports: [Dispatcher, NodeLiveness, DispatchMetrics],
})
export class DispatchModule {}
