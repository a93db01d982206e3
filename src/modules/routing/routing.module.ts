import { Module } from '@nestjs/common';
import { RoutingController } from './routing.controller.js';
import { RoutingRepository } from './routing.repository.js';
import { RoutingService } from './routing.service.js';

@Module({
  controllers: [RoutingController],
  providers: [RoutingRepository, RoutingService],
  exports: [RoutingService],
})
export class RoutingModule {}
