import { Module } from '@nestjs/common';
import { ConcurrencyController } from './concurrency.controller.js';
import { ConcurrencyRepository } from './concurrency.repository.js';
import { ConcurrencyService } from './concurrency.service.js';

@Module({
  controllers: [ConcurrencyController],
  providers: [ConcurrencyRepository, ConcurrencyService],
  exports: [ConcurrencyRepository],
})
export class ConcurrencyModule {}
