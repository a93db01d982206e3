import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AppError, ErrorCode } from '../../common/errors.js';
import { FlatEnvelope } from '../../common/envelope.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { AgentServicesService } from './agent-services.service.js';
import { ConnectionIdParam, DisconnectDto, ListConnectionsQuery } from './dto/queries.dto.js';
import { AgentProxy } from './proxy/agent-proxy.service.js';
import { ConnectionRegistry, type ProxyConnection } from './proxy/connection-registry.js';
import { ApiFlatEnvelope } from '../../common/api-envelope.decorator.js';
import { ClosedConnectionView, ConnectionListView } from './dto/service.view.js';

type Body = Record<string, unknown>;

function mapConnection(c: ProxyConnection): Body {
  return {
    connection_id: c.connection_id,
    session_id: c.session_id,
    client_ip: c.client_ip,
    target_service_id: c.target_service_id,
    target_service: c.target_service,
    routing_strategy: c.routing_strategy,
    status: c.status,
    connected_at: c.connected_at.toISOString(),
    last_activity: new Date(c.last_activity).toISOString(),
    closed_at: c.closed_at?.toISOString() ?? null,
    close_reason: c.close_reason,
    bytes_sent: c.bytes_sent,
    bytes_received: c.bytes_received,
    messages_sent: c.messages_sent,
    messages_received: c.messages_received,
    message_count: c.messages_sent + c.messages_received,
    switches: c.switches,
  };
}

/** Seed 003 §1.2: proxied WebSocket connections held by this hub process. */
@ApiTags('agent-services')
@FlatEnvelope()
@Controller('api/v1/connections')
export class ConnectionsController {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly proxy: AgentProxy,
    private readonly services: AgentServicesService,
  ) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Connections, newest first; ?service_id (id or name) &status=active|closed &limit' })
  @ApiFlatEnvelope(ConnectionListView)
  @ApiBadRequestResponse({ description: 'INVALID_REQUEST with details.field' })
  @ApiNotFoundResponse({ description: 'SERVICE_NOT_FOUND (service_id)' })
  async list(@Query() q: ListConnectionsQuery): Promise<Body> {
    const serviceId = q.service_id ? (await this.services.get(q.service_id)).id : undefined;
    const all = this.registry.list({ serviceId, status: q.status, visible: await this.services.visibleIds() });
    return { connections: all.slice(0, q.limit ?? 50).map(mapConnection), total: all.length };
  }

  @Post(':id/disconnect')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Close one connection; notify_client sends a management_notification first' })
  @ApiFlatEnvelope(ClosedConnectionView)
  @ApiNotFoundResponse({ description: 'CONNECTION_NOT_FOUND: not open on this hub' })
  async disconnect(@Param() { id }: ConnectionIdParam, @Body() dto: DisconnectDto): Promise<Body> {
    const reason = dto.reason ?? 'Administrative disconnect';
    // Another tenant's connection is not there at all: the same 404 as an unknown one.
    const visible = await this.services.visibleIds();
    const target = this.registry.get(id)?.target_service_id;
    const mine = !visible || (target != null && visible.has(target));
    if (!mine || !this.proxy.disconnect(id, reason, dto.notify_client ?? true)) {
      throw new AppError(ErrorCode.CONNECTION_NOT_FOUND, `Connection '${id}' is not open on this hub`, {
        connection_id: id,
      });
    }
    const c = this.registry.get(id) as ProxyConnection;
    return { ...mapConnection(c), message: 'Connection closed' };
  }
}
