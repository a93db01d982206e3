import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { Public } from '../auth/auth.decorators.js';
import { HealthService, type HealthReport } from './health.service.js';

@ApiTags('health')
@Public()
@RawResponse()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiOkResponse({ schema: { example: { status: 'ok', uptime: 12.5 } } })
  healthz(): { status: 'ok'; version: string; uptime: number } {
    return { status: 'ok', version: this.health.version, uptime: process.uptime() };
  }

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
