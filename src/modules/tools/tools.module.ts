import { Module } from '@nestjs/common';
import { NodesModule } from '../nodes/nodes.module.js';
import { PluginsModule } from '../plugin-callbacks/plugins.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { ToolRegistry } from './tool-registry.service.js';
import { ToolRunner } from './tool-runner.service.js';
import { ToolsController } from './tools.controller.js';

/** Tools offered by nodes and plugins (GET /v1/tools), and running a model's tool call as a task on a node. */
@Module({
  imports: [NodesModule, PluginsModule, TasksModule],
  controllers: [ToolsController],
  providers: [ToolRegistry, ToolRunner],
  exports: [ToolRegistry, ToolRunner],
})
export class ToolsModule {}
