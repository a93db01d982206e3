import { Injectable, Logger } from '@nestjs/common';
import { type LlmCaller, LlmQuotaGate, type LlmReservation, type LlmUsageRecord, LlmUsageRecorder } from './llm-accounting.js';

const FREE: LlmReservation = { settle: () => Promise.resolve() };

/** No limits: every call passes (the accounting module replaces it with key limits). */
@Injectable()
export class UnlimitedQuotaGate extends LlmQuotaGate {
  reserve(_caller: LlmCaller, _model: string, _estimatedTokens: number): Promise<LlmReservation> {
    return Promise.resolve(FREE);
  }
}

/** Usage to the debug log only (the accounting module replaces it with llm_usage rows). */
@Injectable()
export class LogUsageRecorder extends LlmUsageRecorder {
  private readonly logger = new Logger('LlmUsage');
  record(row: LlmUsageRecord): void {
    this.logger.debug({ ...row }, 'llm call');
  }
  cooledDown(provider: string, model: string, reason: string): void {
    this.logger.debug({ provider, model, reason }, 'llm deployment cooled down');
  }
}
