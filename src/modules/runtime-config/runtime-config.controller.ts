import { Body, Controller, Delete, Get, Param, Patch } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import type { Principal } from '../auth/api-key.types.js';
import { Authenticated, CurrentPrincipal, GlobalAdmin } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { SettingKeyParam, SettingListView, SettingView } from './dto/config.dto.js';
import { RuntimeConfigService } from './runtime-config.service.js';

/**
 * Apex `/v1/config/*` (seed 001): the effective settings, and hot changes shared by every hub
 * instance. Admin only; the settings are hub-wide, so a tenant's admin may read them and only a
 * global admin may change them (docs/tenants.md). Not rate limited, so a limit set too low can always be undone.
 */
@ApiTags('config')
@SkipRateLimit()
@Authenticated('admin')
@Controller('v1/config')
export class RuntimeConfigController {
  constructor(private readonly settings: RuntimeConfigService) {}

  @Get()
  @ApiOperation({
    summary: 'Every setting: effective value (secrets masked), source (default, env, file, runtime), hot',
  })
  @ApiEnvelope(SettingListView)
  list(): SettingListView {
    return { settings: this.settings.list() };
  }

  @Get(':key')
  @ApiOperation({ summary: 'One setting' })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such setting' })
  @ApiEnvelope(SettingView)
  get(@Param() { key }: SettingKeyParam): SettingView {
    return this.settings.get(key);
  }

  @Patch()
  @GlobalAdmin()
  @ApiOperation({
    summary: 'Change hot settings on every instance, all or nothing; answers their new effective values',
    description:
      'Values are validated like the environment at boot ("120" and 120 both work for integers). A restart-only, unknown or invalid key is VALIDATION_ERROR naming it in details.field.',
  })
  @ApiBody({
    schema: { type: 'object', additionalProperties: true, example: { LOG_LEVEL: 'debug', RATE_LIMIT_MAX: 100 } },
  })
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR: details.field names the setting (or body)' })
  @ApiEnvelope(SettingListView)
  async patch(@Body() body: unknown, @CurrentPrincipal() who: Principal | undefined): Promise<SettingListView> {
    return { settings: await this.settings.patch(body, who?.name ?? null) };
  }

  @Delete(':key')
  @GlobalAdmin()
  @ApiOperation({
    summary: 'Drop the runtime value: back to env/file/default on every instance (idempotent); answers the setting',
  })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such setting' })
  @ApiEnvelope(SettingView)
  async reset(@Param() { key }: SettingKeyParam): Promise<SettingView> {
    return this.settings.reset(key);
  }
}
