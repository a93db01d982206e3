import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../../common/api-envelope.decorator.js';
import type { Principal } from '../../auth/api-key.types.js';
import { Authenticated, CurrentPrincipal } from '../../auth/auth.decorators.js';
import { LlmUsageQuery, LlmUsageView } from './dto/llm-usage.dto.js';
import { LlmUsageService, type UsageReport } from './llm-usage.service.js';

function mapUsage({ filter, rows, totals }: UsageReport): LlmUsageView {
  return {
    interval: filter.interval,
    since: filter.since.toISOString(),
    until: filter.until.toISOString(),
    rows: rows.map((r) => ({ ...r, bucket: r.bucket.toISOString() })),
    totals,
  };
}

@ApiTags('llm')
@Controller('api/v1/llm/usage')
export class LlmUsageController {
  constructor(private readonly usage: LlmUsageService) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({
    summary: 'LLM calls and tokens per minute, hour or day, per key and model (a non-admin key: its own only)',
  })
  @ApiEnvelope(LlmUsageView)
  async get(@Query() q: LlmUsageQuery, @CurrentPrincipal() principal: Principal | undefined): Promise<LlmUsageView> {
    return mapUsage(await this.usage.report(q, principal));
  }
}
