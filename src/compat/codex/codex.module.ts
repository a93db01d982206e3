import { Module } from '@nestjs/common';
import { TasksModule } from '../../modules/tasks/tasks.module.js';
import { CodexController } from './codex.controller.js';

/** Codex Father 2.0 (seed 000) REST surface: `/tasks…` in camelCase over the task services. */
@Module({
  imports: [TasksModule],
  controllers: [CodexController],
})
export class CodexCompatModule {}
