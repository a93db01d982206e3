import { Controller, Get, Res } from '@nestjs/common';
import {
  ApiExtension,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import type { Principal } from '../auth/api-key.types.js';
import { CurrentPrincipal, Public } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { HealthService, type HealthReport } from './health.service.js';
import { ComponentHealthView, HealthReportView } from './system.view.js';

@ApiTags('health')
@Public()
@RawResponse()
@SkipRateLimit()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('health')
  @ApiOperation({
    summary: 'Readiness with components (database with response time); 503 when unhealthy',
    description: 'Open. `metrics.queue_size` is null without a valid key (docs/security.md).',
  })
  @ApiOkResponse({ description: 'status healthy', type: HealthReportView })
  @ApiServiceUnavailableResponse({ description: 'status unhealthy', type: HealthReportView })
  @ApiExtension('x-taskhub-no-4xx', 'open, never rate limited, takes no input')
  @ApiExtraModels(ComponentHealthView)
  async check(
    @CurrentPrincipal() who: Principal | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<HealthReport> {
    const report = await this.health.report(who !== undefined);
    if (report.status !== 'healthy') res.status(503);
    return report;
  }
}
