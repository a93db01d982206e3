import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { FlatEnvelope } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { serviceEndpoint } from './agent-service.types.js';
import { AgentServicesService } from './agent-services.service.js';
import { CreateServiceDto, ListServicesQuery, NotifyServiceDto, UpdateServiceConfigDto } from './dto/service.dto.js';
import { ServiceRefParam } from './dto/service-ref.param.js';
import { AgentProxy } from './proxy/agent-proxy.service.js';
import { ApiFlatEnvelope } from '../../common/api-envelope.decorator.js';
import {
  NotifiedView,
  RegisteredServiceView,
  RemovedServiceView,
  ServiceActionView,
  ServiceListView,
  ServiceView,
} from './dto/service.view.js';

type Body = Record<string, unknown>;

/** Seed 003 §1.1: the agent-service registry and lifecycle. `:id` is a service id or name. */
@ApiTags('agent-services')
@FlatEnvelope()
@Controller('api/v1/services')
export class ServicesController {
  constructor(
    private readonly services: AgentServicesService,
    private readonly proxy: AgentProxy,
  ) {}

  @Post()
  @Authenticated('admin')
  @ApiOperation({
    summary:
      'Register a managed (agent_factory_path or command) or external (endpoint) service; SERVICE_ALREADY_EXISTS on a taken name',
  })
  @ApiFlatEnvelope(RegisteredServiceView, { status: 201 })
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  @ApiConflictResponse({ description: 'SERVICE_ALREADY_EXISTS or PORT_IN_USE' })
  async register(@Body() dto: CreateServiceDto): Promise<Body> {
    const row = await this.services.register(dto);
    return {
      service_id: row.id,
      message: 'Service registered successfully',
      endpoint: serviceEndpoint(row),
      service: await this.services.view(row),
    };
  }

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Services, oldest first; ?tag&status&limit&offset' })
  @ApiFlatEnvelope(ServiceListView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  async list(@Query() q: ListServicesQuery): Promise<Body> {
    const limit = q.limit ?? 20;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.services.list({ tag: q.tag, status: q.status, limit, offset });
    const services = await Promise.all(rows.map((r) => this.services.view(r)));
    return { services, total, page: { limit, offset, has_next: offset + rows.length < total } };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One service with config, live stats and health' })
  @ApiFlatEnvelope(ServiceView)
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  async get(@Param() { id }: ServiceRefParam): Promise<Body> {
    return this.services.view(await this.services.get(id));
  }

  @Post(':id/start')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({
    summary: 'Start; waits for the first passing health check (SERVICE_START_FAILED with the last output, PORT_IN_USE)',
  })
  @ApiFlatEnvelope(ServiceActionView)
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  @ApiConflictResponse({ description: 'PORT_IN_USE' })
  @ApiBadGatewayResponse({ description: 'SERVICE_START_FAILED with the last output' })
  async start(@Param() { id }: ServiceRefParam): Promise<Body> {
    return { ...(await this.services.view(await this.services.start(id))), message: 'Service started' };
  }

  @Post(':id/stop')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Stop: SIGTERM, then SIGKILL after SERVICE_STOP_GRACE_MS' })
  @ApiFlatEnvelope(ServiceActionView)
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  async stop(@Param() { id }: ServiceRefParam): Promise<Body> {
    return { ...(await this.services.view(await this.services.stop(id))), message: 'Service stopped' };
  }

  @Post(':id/restart')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Stop (if running), then start' })
  @ApiFlatEnvelope(ServiceActionView)
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  @ApiBadGatewayResponse({ description: 'SERVICE_START_FAILED with the last output' })
  async restart(@Param() { id }: ServiceRefParam): Promise<Body> {
    return { ...(await this.services.view(await this.services.restart(id))), message: 'Service restarted' };
  }

  @Put(':id/config')
  @Authenticated('admin')
  @ApiOperation({
    summary: 'Change config fields (max_sessions, auto_restart, …), weight, tags, description, health_check',
  })
  @ApiFlatEnvelope(ServiceView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  async updateConfig(@Param() { id }: ServiceRefParam, @Body() dto: UpdateServiceConfigDto): Promise<Body> {
    return this.services.view(await this.services.updateConfig(id, dto));
  }

  @Delete(':id')
  @Authenticated('admin')
  @ApiOperation({ summary: 'Stop the service if needed, then delete it' })
  @ApiFlatEnvelope(RemovedServiceView)
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  async remove(@Param() { id }: ServiceRefParam): Promise<Body> {
    const row = await this.services.remove(id);
    return { service_id: row.id, name: row.name, message: 'Service deleted' };
  }

  @Post(':id/notify')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Send a management_notification to every proxied client of the service (on this hub)' })
  @ApiFlatEnvelope(NotifiedView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND' })
  async notify(@Param() { id }: ServiceRefParam, @Body() dto: NotifyServiceDto): Promise<Body> {
    const s = await this.services.get(id);
    const notification = {
      type: dto.type ?? 'announcement',
      message: dto.message,
      severity: dto.severity ?? 'info',
      ...(dto.countdown_seconds !== undefined ? { countdown_seconds: dto.countdown_seconds } : {}),
    };
    return { service_id: s.id, delivered: this.proxy.notify(s.id, notification), notification };
  }
}
