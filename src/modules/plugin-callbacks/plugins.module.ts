import { Module } from '@nestjs/common';
import { PluginsController } from './plugins.controller.js';
import { PluginsRepository } from './plugins.repository.js';
import { PluginsService } from './plugins.service.js';

/** The plugin registry (no dependency on tasks, so the tasks module can ask whether a plugin exists). */
@Module({
  controllers: [PluginsController],
  providers: [PluginsRepository, PluginsService],
  exports: [PluginsService],
})
export class PluginsModule {}
