import { Module } from '@nestjs/common';
import { NodesModule } from '../../modules/nodes/nodes.module.js';
import { TasksModule } from '../../modules/tasks/tasks.module.js';
import { ApexNodesController } from './apex-nodes.controller.js';

/** Seed 001 (Apex Bridge) HTTP surface under /v1 (its WebSocket channels live in the realtime module). */
@Module({
  imports: [TasksModule, NodesModule],
  controllers: [ApexNodesController],
})
export class ApexCompatModule {}
