import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { RolloutEvaluator } from './rollout-evaluator.service.js';
import { RolloutReleaser } from './rollout-releaser.service.js';
import { RolloutsController } from './rollouts.controller.js';
import { RolloutsRepository } from './rollouts.repository.js';
import { RolloutsService } from './rollouts.service.js';

/** Fleet rollouts with AWS IoT Jobs semantics (issue 29; docs/rollouts.md). */
@Module({
  imports: [TasksModule],
  controllers: [RolloutsController],
  providers: [RolloutsRepository, RolloutsService, RolloutReleaser, RolloutEvaluator],
})
export class RolloutsModule {}
