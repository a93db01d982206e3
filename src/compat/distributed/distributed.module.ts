import { Module } from '@nestjs/common';
import { DispatchModule } from '../../modules/dispatch/dispatch.module.js';
import { NodesModule } from '../../modules/nodes/nodes.module.js';
import { TasksModule } from '../../modules/tasks/tasks.module.js';
import { DistributedController } from './distributed.controller.js';

@Module({
  imports: [TasksModule, NodesModule, DispatchModule],
  controllers: [DistributedController],
})
export class DistributedCompatModule {}
