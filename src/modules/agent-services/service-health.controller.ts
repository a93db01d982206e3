import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { FlatEnvelope } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { AgentServicesService } from './agent-services.service.js';
import { HistoryQuery } from './dto/queries.dto.js';
import { ServiceRefParam } from './dto/service-ref.param.js';
import { ApiFlatEnvelope } from '../../common/api-envelope.decorator.js';
import { HealthCheckResultView, HealthHistoryView, ServiceHealthView } from './dto/service.view.js';

type Body = Record<string, unknown>;
const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** Seed 003 §1.5: a service's health, a check on demand, and the history of checks. */
@ApiTags('agent-services')
@FlatEnvelope()
@Authenticated('client', 'worker')
@ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
@Controller('api/v1/health/services')
export class ServiceHealthController {
  constructor(private readonly services: AgentServicesService) {}

  @Get(':id')
  @ApiOperation({ summary: 'Current health: healthy | unhealthy | unknown, last check, response time' })
  @ApiFlatEnvelope(ServiceHealthView)
  async get(@Param() { id }: ServiceRefParam): Promise<Body> {
    const s = await this.services.get(id);
    return {
      service_id: s.id,
      name: s.name,
      status: s.health_status,
      service_status: s.status,
      last_check: iso(s.health_checked_at),
      response_time_ms: s.health_response_ms,
      message: s.health_message,
      health_check: s.health_check,
      health_check_enabled: s.config.health_check_enabled,
    };
  }

  @Post(':id/check')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Check now (recorded in the history); 503 HEALTH_CHECK_FAILED when the check does not pass (or the service is not running)',
  })
  @ApiFlatEnvelope(HealthCheckResultView)
  @ApiServiceUnavailableResponse({ description: 'HEALTH_CHECK_FAILED' })
  async check(@Param() { id }: ServiceRefParam): Promise<Body> {
    const { row, result } = await this.services.check(id);
    return { service_id: row.id, name: row.name, ...result, checked_at: iso(row.health_checked_at) };
  }

  @Get(':id/history')
  @ApiOperation({ summary: 'Checks, newest first' })
  @ApiFlatEnvelope(HealthHistoryView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  async history(@Param() { id }: ServiceRefParam, @Query() q: HistoryQuery): Promise<Body> {
    const { service, checks } = await this.services.healthHistory(id, q.limit ?? 50);
    return {
      service_id: service.id,
      name: service.name,
      history: checks.map((c) => ({
        status: c.status,
        response_time_ms: c.response_time_ms,
        message: c.message,
        checked_at: iso(c.checked_at),
      })),
      total: checks.length,
    };
  }
}
