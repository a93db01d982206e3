import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { ScheduleFirer } from './schedule-firer.service.js';
import { SchedulesController } from './schedules.controller.js';
import { SchedulesRepository } from './schedules.repository.js';
import { SchedulesService } from './schedules.service.js';

/** Proactive tasks and reminders (seed 001 §7.3, §7.5; docs/schedules.md). */
@Module({
  imports: [TasksModule],
  controllers: [SchedulesController],
  providers: [SchedulesRepository, SchedulesService, ScheduleFirer],
  exports: [ScheduleFirer],
})
export class SchedulesModule {}
