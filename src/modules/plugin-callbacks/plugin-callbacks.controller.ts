import { Body, Controller, Headers, HttpCode, Param, Post, Req, UseGuards } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Public } from '../auth/auth.decorators.js';
import { PluginCallbackGuard } from './plugin-callback.guard.js';
import { type CallbackAnswer, PluginCallbacksService } from './plugin-callbacks.service.js';

/** Seed 001 (Apex) `POST /plugin-callback/:plugin/:taskId`: no API key; the plugin signs or presents its token. */
@ApiTags('plugins')
@Controller('plugin-callback')
export class PluginCallbacksController {
  constructor(private readonly callbacks: PluginCallbacksService) {}

  @Post(':plugin/:taskId')
  @Public()
  @UseGuards(PluginCallbackGuard)
  @HttpCode(200)
  @ApiOperation({
    summary:
      'A plugin reports the outcome of a task it holds, or its node holds: {status: "success"|"failed", output?, result?, error?, attempt?}',
    description:
      'Signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature) or with Authorization: Bearer <plugin token>. ' +
      'Settles a task awaiting the plugin, or one a node holds whose metadata.plugin names it (the callback of its task_assign). ' +
      '`attempt` (or X-Taskhub-Attempt) fences: an older attempt is 409 STALE_ATTEMPT.',
  })
  @ApiHeader({
    name: 'x-taskhub-attempt',
    required: false,
    description: 'The attempt the outcome is for (as body `attempt`)',
  })
  @ApiEnvelope(null, { description: '{task_id, status}; {duplicate: true} as well for a repeated webhook-id' })
  @ApiUnauthorizedResponse({ description: 'UNAUTHORIZED: unsigned, wrongly signed, stale, unknown plugin or token' })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such task' })
  @ApiConflictResponse({
    description: 'CONFLICT: neither this plugin nor its node holds the task; STALE_ATTEMPT: an older attempt',
  })
  @ApiTooManyRequestsResponse({ description: 'RATE_LIMITED, with Retry-After' })
  async callback(
    @Param('taskId') taskId: string,
    @Body() body: unknown,
    @Req() req: Request,
    @Headers('x-taskhub-attempt') attempt?: string,
  ): Promise<CallbackAnswer> {
    return this.callbacks.apply(req.pluginCallback as NonNullable<Request['pluginCallback']>, taskId, body, attempt);
  }
}
