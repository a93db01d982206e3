import { Body, Controller, Delete, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import type { Principal } from '../auth/api-key.types.js';
import { Authenticated, CurrentPrincipal } from '../auth/auth.decorators.js';
import {
  CreateTenantDto,
  ListTenantsQuery,
  TenantIdParam,
  TenantListView,
  TenantView,
  UpdateTenantDto,
} from './dto/tenant.dto.js';
import { mapTenant } from './tenant.mapper.js';
import { TenantsService } from './tenants.service.js';

@ApiTags('tenants')
@ApiNotFoundResponse({ description: 'TENANT_NOT_FOUND (also for a tenant the caller may not see)' })
@Authenticated('admin')
@Controller('api/v1/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @ApiOperation({ summary: 'Create a tenant (global admin), optionally with limits' })
  @ApiEnvelope(TenantView, { status: 201 })
  async create(@Body() dto: CreateTenantDto, @CurrentPrincipal() who: Principal): Promise<TenantView> {
    return mapTenant(
      await this.tenants.create(who, { id: dto.id, name: dto.name, limits: dto.limits && { ...dto.limits } }),
    );
  }

  @Get()
  @ApiOperation({ summary: 'Tenants (a global admin sees all, a tenant admin its own)' })
  @ApiEnvelope(TenantListView)
  async list(@Query() q: ListTenantsQuery, @CurrentPrincipal() who: Principal): Promise<TenantListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.tenants.list(who, limit, offset);
    return {
      tenants: rows.map(mapTenant),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One tenant' })
  @ApiEnvelope(TenantView)
  async get(@Param() { id }: TenantIdParam, @CurrentPrincipal() who: Principal): Promise<TenantView> {
    return mapTenant(await this.tenants.get(who, id));
  }

  @Patch(':id')
  @ApiOperation({ summary: "Replace a tenant's limits (global admin); enforced at once on this hub" })
  @ApiEnvelope(TenantView)
  async update(
    @Param() { id }: TenantIdParam,
    @Body() dto: UpdateTenantDto,
    @CurrentPrincipal() who: Principal,
  ): Promise<TenantView> {
    return mapTenant(await this.tenants.updateLimits(who, id, { ...dto.limits }));
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Delete a tenant and every row it owns (global admin); default: CONFLICT' })
  @ApiEnvelope(TenantView)
  async remove(@Param() { id }: TenantIdParam, @CurrentPrincipal() who: Principal): Promise<TenantView> {
    return mapTenant(await this.tenants.remove(who, id));
  }
}
