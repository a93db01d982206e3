import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { NodesController } from './nodes.controller.js';
import { NodesRepository } from './nodes.repository.js';
import { NodesService } from './nodes.service.js';

@Module({
  imports: [TasksModule],
  controllers: [NodesController],
  providers: [NodesRepository, NodesService],
  exports: [NodesService],
})
export class NodesModule {}
