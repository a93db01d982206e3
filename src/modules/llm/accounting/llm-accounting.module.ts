import { Global, Module } from '@nestjs/common';
import { AuthModule } from '../../auth/auth.module.js';
import { MetricsModule } from '../../metrics/metrics.module.js';
import { TenantsModule } from '../../tenants/tenants.module.js';
import { LlmQuotaGate, LlmUsageRecorder } from '../llm-accounting.js';
import { LlmMetrics } from './llm-metrics.js';
import { LlmQuotaRepository } from './llm-quota.repository.js';
import { LlmUsageController } from './llm-usage.controller.js';
import { LlmUsageRepository } from './llm-usage.repository.js';
import { LlmUsageService } from './llm-usage.service.js';
import { PgQuotaGate } from './pg-quota-gate.js';
import { PgUsageRecorder } from './pg-usage-recorder.js';
import { TenantLlmBudget } from './tenant-llm-budget.js';

/** Quotas per API key and per tenant, and usage rows of the LLM gateway, in PostgreSQL (docs/llm-accounting.md). */
@Global()
@Module({
  imports: [AuthModule, MetricsModule, TenantsModule],
  controllers: [LlmUsageController],
  providers: [
    LlmQuotaRepository,
    LlmUsageRepository,
    LlmMetrics,
    LlmUsageService,
    TenantLlmBudget,
    { provide: LlmQuotaGate, useClass: PgQuotaGate },
    { provide: LlmUsageRecorder, useClass: PgUsageRecorder },
  ],
  exports: [LlmQuotaGate, LlmUsageRecorder],
})
export class LlmAccountingModule {}
