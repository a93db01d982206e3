import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { Public } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { HealthService, type HealthReport } from './health.service.js';

@ApiTags('health')
@Public()
@RawResponse()
@SkipRateLimit()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('health')
  @ApiOperation({ summary: 'Readiness with components (database with response time); 503 when unhealthy' })
  @ApiOkResponse({ description: 'status healthy' })
  @ApiServiceUnavailableResponse({ description: 'status unhealthy' })
  async check(@Res({ passthrough: true }) res: Response): Promise<HealthReport> {
    const report = await this.health.report();
    if (report.status !== 'healthy') res.status(503);
    return report;
  }
}
