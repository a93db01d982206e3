import { Global, Module } from '@nestjs/common';
import { ConfigChannel } from './config-channel.service.js';
import { RuntimeConfigController } from './runtime-config.controller.js';
import { RuntimeConfigRepository } from './runtime-config.repository.js';
import { RuntimeConfigService } from './runtime-config.service.js';

/** Hot settings (/v1/config). Global: any module may subscribe with RuntimeConfigService.onChange. */
@Global()
@Module({
  controllers: [RuntimeConfigController],
  providers: [RuntimeConfigRepository, RuntimeConfigService, ConfigChannel],
  exports: [RuntimeConfigService],
})
export class RuntimeConfigModule {}
