import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FlatEnvelope } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { AgentServicesService } from './agent-services.service.js';
import { LogSearchQuery, ServiceLogsQuery } from './dto/queries.dto.js';
import { ServiceRefParam } from './dto/service-ref.param.js';
import { ServiceLogStore } from './service-logs.store.js';
import { ApiFlatEnvelope } from '../../common/api-envelope.decorator.js';
import { LogSearchView, ServiceLogsView } from './dto/service.view.js';

type Body = Record<string, unknown>;

/** Seed 003 §1.6: process output and lifecycle events of services run by this hub process. */
@ApiTags('agent-services')
@FlatEnvelope()
@Authenticated('client', 'worker')
@ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
@ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
@Controller('api/v1/logs')
export class ServiceLogsController {
  constructor(
    private readonly services: AgentServicesService,
    private readonly logs: ServiceLogStore,
  ) {}

  @Get('services/:id')
  @ApiOperation({ summary: 'Newest last; ?level (and above) &limit &since &after_seq' })
  @ApiFlatEnvelope(ServiceLogsView)
  async service(@Param() { id }: ServiceRefParam, @Query() q: ServiceLogsQuery): Promise<Body> {
    const s = await this.services.get(id);
    const logs = this.logs.query(s.id, {
      level: q.level,
      since: q.since ? new Date(q.since) : undefined,
      after_seq: q.after_seq,
      limit: q.limit ?? 100,
    });
    return { service_id: s.id, name: s.name, logs, total: logs.length };
  }

  @Get('search')
  @ApiOperation({ summary: 'Case-insensitive text search; ?query &service_id &limit' })
  @ApiFlatEnvelope(LogSearchView)
  async search(@Query() q: LogSearchQuery): Promise<Body> {
    const serviceId = q.service_id ? (await this.services.get(q.service_id)).id : undefined;
    const logs = this.logs.search(q.query, serviceId, q.limit ?? 50, await this.services.visibleIds());
    return { query: q.query, logs, total: logs.length };
  }
}
