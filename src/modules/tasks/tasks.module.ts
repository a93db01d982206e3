import { Module } from '@nestjs/common';
import { PluginsModule } from '../plugin-callbacks/plugins.module.js';
import { DurationEstimates } from './duration-estimates.js';
import { LeaseSweeper } from './lease-sweeper.service.js';
import { TaskWorkersController } from './task-workers.controller.js';
import { TasksController } from './tasks.controller.js';
import { TaskQueriesRepository } from './task-queries.repository.js';
import { TaskWaiters } from './task-waiters.js';
import { TasksRepository } from './tasks.repository.js';
import { TasksService } from './tasks.service.js';

@Module({
  imports: [PluginsModule],
  // Workers first: `GET /tasks/next` must be matched before `GET /tasks/:id`.
  controllers: [TaskWorkersController, TasksController],
  providers: [TasksRepository, TaskQueriesRepository, TasksService, TaskWaiters, LeaseSweeper, DurationEstimates],
  exports: [TasksService, DurationEstimates],
})
export class TasksModule {}
