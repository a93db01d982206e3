import { Module } from '@nestjs/common';
import { ConcurrencyModule } from '../concurrency/concurrency.module.js';
import { PluginsModule } from '../plugin-callbacks/plugins.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { DurationEstimates } from './duration-estimates.js';
import { LeaseSweeper } from './lease-sweeper.service.js';
import { TaskActionsService } from './task-actions.service.js';
import { TaskAnnouncer } from './task-announcer.js';
import { TaskAssignmentsRepository } from './task-assignments.repository.js';
import { TaskBatchesRepository } from './task-batches.repository.js';
import { TaskCountsFolder } from './task-counts-folder.service.js';
import { TaskCountsRepository } from './task-counts.repository.js';
import { TaskHoldersService } from './task-holders.service.js';
import { TaskIntakeService } from './task-intake.service.js';
import { TaskQueriesRepository } from './task-queries.repository.js';
import { TaskQueriesService } from './task-queries.service.js';
import { TaskQueueGaugesRepository } from './task-queue-gauges.repository.js';
import { TaskRecoveryService } from './task-recovery.service.js';
import { TaskRetention } from './task-retention.js';
import { TaskRetentionRepository } from './task-retention.repository.js';
import { TaskTransitionsRepository } from './task-transitions.repository.js';
import { TaskWaiters } from './task-waiters.js';
import { TaskWorkersController } from './task-workers.controller.js';
import { TasksController } from './tasks.controller.js';
import { TasksRepository } from './tasks.repository.js';
import { TenantTaskLimit } from './tenant-task-limit.js';
import { TaskTracing } from './task-tracing.js';

const SERVICES = [TaskIntakeService, TaskQueriesService, TaskHoldersService, TaskActionsService, TaskRecoveryService];

@Module({
  imports: [PluginsModule, TenantsModule, ConcurrencyModule],
  // Workers first: `GET /tasks/next` must be matched before `GET /tasks/:id`.
  controllers: [TaskWorkersController, TasksController],
  providers: [
    TasksRepository,
    TaskTransitionsRepository,
    TaskBatchesRepository,
    TaskAssignmentsRepository,
    TaskQueriesRepository,
    TaskCountsRepository,
    TaskQueueGaugesRepository,
    TaskCountsFolder,
    TaskAnnouncer,
    TaskTracing,
    TaskWaiters,
    LeaseSweeper,
    DurationEstimates,
    TenantTaskLimit,
    TaskRetentionRepository,
    TaskRetention,
    ...SERVICES,
  ],
  // TaskAssignmentsRepository is exported for the dispatcher's round only: it plans, and the
  // pending → dispatched write stays a tasks-owned statement.
  // TaskQueueGaugesRepository: the metrics module's scrape-time queue gauges (read-only).
  exports: [...SERVICES, DurationEstimates, TaskAssignmentsRepository, TaskWaiters, TaskQueueGaugesRepository],
})
export class TasksModule {}
