import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AppError } from '../../common/errors.js';
import { FlatEnvelope } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { AgentServicesService } from './agent-services.service.js';
import { durationSeconds, TimeseriesQuery } from './dto/queries.dto.js';
import { ServiceStatsService } from './service-stats.service.js';
import { ApiFlatEnvelope } from '../../common/api-envelope.decorator.js';
import { StatsOverviewView, TimeseriesView } from './dto/service.view.js';

type Body = Record<string, unknown>;
const MAX_PERIOD_S = 7 * 86400;
const MAX_POINTS = 2000;

/** Seed 003 §1.4: overview and time series of the agent services. */
@ApiTags('agent-services')
@FlatEnvelope()
@Authenticated('client', 'worker')
@Controller('api/v1/stats')
export class ServiceStatsController {
  constructor(
    private readonly stats: ServiceStatsService,
    private readonly services: AgentServicesService,
  ) {}

  @Get('overview')
  @ApiOperation({
    summary: 'Services by status, connections, sessions, performance and resources (counters since this hub started)',
  })
  @ApiFlatEnvelope(StatsOverviewView)
  overview(): Promise<Body> {
    return this.stats.overview();
  }

  @Get('timeseries')
  @ApiOperation({
    summary:
      'Stored samples bucketed by interval over the period: connections, sessions, messages, response_time, error_rate',
  })
  @ApiFlatEnvelope(TimeseriesView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST: details.field names period, interval or metric' })
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND (service_id)' })
  async timeseries(@Query() q: TimeseriesQuery): Promise<Body> {
    const period = q.period ?? '1h';
    const interval = q.interval ?? '5m';
    const periodS = durationSeconds(period);
    const intervalS = durationSeconds(interval);
    if (periodS < 1 || periodS > MAX_PERIOD_S) throw AppError.validation('period', 'period must be between 1s and 7d');
    if (intervalS < 1 || intervalS > periodS)
      throw AppError.validation('interval', 'interval must be at least 1s and at most the period');
    if (periodS / intervalS > MAX_POINTS)
      throw AppError.validation('interval', `at most ${MAX_POINTS} points: use a longer interval`);
    const service = q.service_id ? await this.services.get(q.service_id) : null;
    const data = await this.stats.timeseries(q.metric, periodS, intervalS, service?.id ?? null);
    return { metric: q.metric, period, interval, service_id: service?.id ?? null, data };
  }
}
