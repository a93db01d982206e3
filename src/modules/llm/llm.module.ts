import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module.js';
import { ToolsModule } from '../tools/tools.module.js';
import { ChatTurns } from './chat-turns.service.js';
import { LlmConfigController } from './llm-config.controller.js';
import { LlmController } from './llm.controller.js';
import { LlmGateway } from './llm-gateway.service.js';
import { LlmHealth } from './llm-health.service.js';
import { LlmRouter } from './llm-router.js';
import { LlmStatusController } from './llm-status.controller.js';
import { RunningRequests } from './running-requests.js';

/** The OpenAI-compatible LLM gateway (seed 001): /v1/chat/completions, /v1/models, /v1/interrupt. */
@Module({
  // TenantsModule: tenants' weights for the slots of deployments at max_concurrency.
  imports: [ToolsModule, TenantsModule],
  // LlmConfigController before /v1/config/:key of the runtime-config module (this module is imported first).
  controllers: [LlmConfigController, LlmController, LlmStatusController],
  providers: [
    LlmRouter,
    LlmGateway,
    ChatTurns,
    LlmHealth,
    RunningRequests,
    // LlmQuotaGate and LlmUsageRecorder come from the global LlmAccountingModule.
  ],
  exports: [LlmGateway, LlmRouter, LlmHealth],
})
export class LlmModule {}
