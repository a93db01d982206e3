import { Body, Controller, Delete, Get, Param, Patch, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { IdParam } from '../../common/id-param.dto.js';
import type { ApiKeyRole, ApiKeyRow, Principal } from './api-key.types.js';
import { ApiKeysService } from './api-keys.service.js';
import { Authenticated, CurrentPrincipal } from './auth.decorators.js';
import { ApiKeyLimitsDto, ApiKeyView, CreateApiKeyDto, CreatedApiKeyView } from './dto/create-api-key.dto.js';

export function mapApiKey(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    roles: row.roles,
    prefix: row.prefix,
    created_at: row.created_at.toISOString(),
    last_used_at: row.last_used_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
    limits: row.limits ?? null,
    tenant_id: row.tenant_id,
  };
}

@ApiTags('api-keys')
@Authenticated('admin')
@Controller('api/v1/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a key (admin) in a tenant (tenant_id; null: global). The key is in the answer once.',
  })
  @ApiEnvelope(CreatedApiKeyView, { status: 201, description: 'Created; `key` is shown this once' })
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  async create(@Body() dto: CreateApiKeyDto, @CurrentPrincipal() who: Principal): Promise<CreatedApiKeyView> {
    // `roles` (several) or `role` (one, as before); with both, `role` leads.
    const roles = dto.roles
      ? dto.role
        ? [dto.role, ...dto.roles.filter((r) => r !== dto.role)]
        : dto.roles
      : [dto.role as ApiKeyRole];
    const { key, row } = await this.keys.createFor(who, dto.name, roles, dto.limits ?? null, dto.tenant_id);
    return { ...mapApiKey(row), key };
  }

  @Get()
  @ApiOperation({ summary: 'List keys (admin); hashes are never shown' })
  @ApiEnvelope(ApiKeyView, { isArray: true })
  async list(): Promise<ApiKeyView[]> {
    return (await this.keys.list()).map(mapApiKey);
  }

  @Patch(':id/limits')
  @ApiOperation({ summary: "Change a key's LLM limits (admin): fields given replace, null fields are removed" })
  @ApiEnvelope(ApiKeyView)
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such key' })
  async patchLimits(@Param() { id }: IdParam, @Body() dto: ApiKeyLimitsDto): Promise<ApiKeyView> {
    return mapApiKey(await this.keys.patchLimits(id, { ...dto }));
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Revoke a key (admin)' })
  @ApiEnvelope(ApiKeyView)
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such key' })
  async revoke(@Param() { id }: IdParam): Promise<ApiKeyView> {
    return mapApiKey(await this.keys.revoke(id));
  }
}
