import { Global, Module } from '@nestjs/common';
import { RetentionCleaner } from './retention-cleaner.service.js';
import { RetentionMetrics } from './retention-metrics.js';
import { RetentionRegistry } from './retention-registry.js';

/**
 * Retention (docs/retention.md): the registry every module adds its bounds to, and the one
 * cleaner that enforces them. Global, so an owning module registers without importing this one.
 */
@Global()
@Module({
  providers: [RetentionRegistry, RetentionMetrics, RetentionCleaner],
  exports: [RetentionRegistry, RetentionMetrics, RetentionCleaner],
})
export class RetentionModule {}
