import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { DeliveryRetention } from './delivery-retention.js';
import { PluginCallbackGuard } from './plugin-callback.guard.js';
import { PluginCallbacksController } from './plugin-callbacks.controller.js';
import { PluginCallbacksService } from './plugin-callbacks.service.js';
import { PluginDeliveriesRepository } from './plugin-deliveries.repository.js';
import { PluginsModule } from './plugins.module.js';

/** Plugins calling back into the tasks they hold (`/plugin-callback/:plugin/:taskId`). */
@Module({
  imports: [PluginsModule, TasksModule, TenantsModule],
  controllers: [PluginCallbacksController],
  providers: [PluginDeliveriesRepository, PluginCallbacksService, PluginCallbackGuard, DeliveryRetention],
})
export class PluginCallbacksModule {}
