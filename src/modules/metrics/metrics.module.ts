import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { HealthController } from './health.controller.js';
import { HealthService } from './health.service.js';
import { StatisticsController } from './statistics.controller.js';

@Module({
  imports: [TasksModule],
  controllers: [HealthController, StatisticsController],
  providers: [HealthService],
})
export class MetricsModule {}
