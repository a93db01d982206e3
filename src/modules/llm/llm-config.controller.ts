import { Body, Controller, Get, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { Principal } from '../auth/api-key.types.js';
import { Authenticated, GlobalAdmin, CurrentPrincipal } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { RuntimeConfigService } from '../runtime-config/runtime-config.service.js';
import { LlmRouter } from './llm-router.js';
import { LlmConfigDocument } from './llm-config.view.js';
import { type LlmProvider, maskProviders, parseLlmSettings } from './llm-settings.js';

interface LlmConfigView {
  providers: (Omit<LlmProvider, 'api_key'> & { api_key?: string })[];
  aliases: Record<string, string>;
  fallbacks: Record<string, string[]>;
  default_model: string | null;
}

/**
 * `/v1/config/llm`: the gateway's providers, aliases, fallbacks and default model as one
 * document (api keys masked). PUT replaces it on every hub instance: it is stored as the hot
 * settings LLM_PROVIDERS, LLM_ALIASES, LLM_FALLBACKS and LLM_DEFAULT_MODEL.
 */
@ApiTags('config')
@SkipRateLimit()
@Authenticated('admin')
@Controller('v1/config/llm')
export class LlmConfigController {
  constructor(
    private readonly router: LlmRouter,
    private readonly settings: RuntimeConfigService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'LLM providers (keys masked), aliases, fallbacks, default model' })
  @ApiEnvelope(LlmConfigDocument)
  get(): LlmConfigView {
    return this.view();
  }

  @Put()
  @GlobalAdmin()
  @ApiOperation({
    summary: 'Replace the LLM configuration on every instance (validated; the field is named when refused)',
  })
  @ApiBody({ type: LlmConfigDocument })
  @ApiEnvelope(LlmConfigDocument)
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR: details.field names the offending field' })
  async put(@Body() body: unknown, @CurrentPrincipal() who: Principal | undefined): Promise<LlmConfigView> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new AppError(
        ErrorCode.VALIDATION_ERROR,
        'The body must be {providers, aliases?, fallbacks?, default_model?}',
        { field: 'body' },
      );
    }
    const b = body as Record<string, unknown>;
    if (b.providers === undefined)
      throw new AppError(ErrorCode.VALIDATION_ERROR, 'providers is required', { field: 'providers' });
    const parsed = parseLlmSettings({
      providers: b.providers,
      aliases: b.aliases,
      fallbacks: b.fallbacks,
      default_model: b.default_model,
    });
    if (!parsed.ok) throw new AppError(ErrorCode.VALIDATION_ERROR, parsed.message, { field: parsed.field });
    const s = parsed.value;
    await this.settings.patch(
      {
        LLM_PROVIDERS: JSON.stringify(s.providers),
        LLM_ALIASES: JSON.stringify(s.aliases),
        LLM_FALLBACKS: JSON.stringify(s.fallbacks),
        ...(s.default_model ? { LLM_DEFAULT_MODEL: s.default_model } : {}),
      },
      who?.name ?? null,
    );
    if (!s.default_model) await this.settings.reset('LLM_DEFAULT_MODEL');
    return this.view();
  }

  private view(): LlmConfigView {
    const s = this.router.current;
    return {
      providers: maskProviders(s.providers),
      aliases: s.aliases,
      fallbacks: s.fallbacks,
      default_model: s.default_model ?? null,
    };
  }
}
