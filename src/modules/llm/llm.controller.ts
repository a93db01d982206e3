import { Body, Controller, Get, HttpCode, Logger, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiExtraModels,
  ApiGatewayTimeoutResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { AppConfig } from '../../config/app-config.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { PacedResponse } from '../edge/paced-response.js';
import { Authenticated } from '../auth/auth.decorators.js';
import type { LlmCaller } from './llm-accounting.js';
import { LlmError } from './llm-error.js';
import { LlmGateway } from './llm-gateway.service.js';
import { ChatTurns } from './chat-turns.service.js';
import { RunningRequests } from './running-requests.js';
import { sendJson } from '../../common/send-json.js';
import { sendLlmError } from './openai-errors.js';
import { upstreamJson } from './upstream.js';
import { ChatCompletionView, InterruptedView, OpenAiModelListView } from './openai.view.js';

/**
 * Seed 001's OpenAI-compatible surface: an `openai` client pointed at `<hub>/v1` works
 * unchanged. Answers and errors are OpenAI's shapes (no envelope); every answer carries
 * `x-request-id`, the id `/v1/interrupt` takes.
 */
@ApiTags('LLM gateway (OpenAI-compatible, seed 001)')
@RawResponse()
@Controller('v1')
export class LlmController {
  private readonly logger = new Logger('LlmController');

  constructor(
    private readonly gateway: LlmGateway,
    private readonly turns: ChatTurns,
    private readonly running: RunningRequests,
    private readonly config: AppConfig,
    private readonly edge: EdgeMetrics,
  ) {}

  @Get('models')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Every configured model and alias' })
  @ApiOkResponse({ type: OpenAiModelListView })
  models(): ReturnType<LlmGateway['models']> {
    return this.gateway.models();
  }

  @Post('chat/completions')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Chat Completions: JSON, or text/event-stream with stream: true' })
  @ApiBody({ schema: { type: 'object', additionalProperties: true, required: ['messages'] } })
  @ApiOkResponse({
    description: 'A chat.completion; with stream: true, text/event-stream of chat.completion.chunk ending in [DONE]',
    content: {
      'application/json': { schema: { $ref: getSchemaPath(ChatCompletionView) } },
      'text/event-stream': { schema: { type: 'string', description: 'data: <chunk JSON> lines, then data: [DONE]' } },
    },
  })
  @ApiExtraModels(ChatCompletionView)
  @ApiBadRequestResponse({ description: 'invalid_request_error (param names the field)' })
  @ApiNotFoundResponse({ description: 'model_not_found' })
  @ApiTooManyRequestsResponse({ description: 'rate_limit_exceeded or a quota of the key, with retry-after' })
  @ApiBadGatewayResponse({ description: 'every upstream failed' })
  @ApiGatewayTimeoutResponse({ description: 'LLM_MAX_REQUEST_MS passed' })
  async chat(@Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const caller: LlmCaller = { keyId: req.principal?.keyId ?? null, source: 'http' };
    const gone = new AbortController();
    // The response closing before it finished: the client left (or was dropped as a slow consumer).
    res.on('close', () => {
      if (!res.writableFinished) gone.abort('client_closed');
    });
    // A reset mid-answer ends this answer only ('close' above stops the upstream call).
    const streamFailed = (e: Error): void =>
      this.logger.debug({ err: e, request_id: req.requestId }, 'chat request or answer stream failed');
    req.on('error', streamFailed);
    res.on('error', streamFailed);
    // Paced by the client: the gateway reads no further upstream while it is behind (docs/edge.md).
    const paced = new PacedResponse(
      res,
      () => this.config.OUTBOUND_LIMIT_BYTES,
      () => {
        this.edge.drop('llm', 'slow_consumer');
        this.logger.warn(
          { request_id: req.requestId, queued: res.writableLength },
          'chat client is not reading its stream: answer dropped (SLOW_CONSUMER)',
        );
      },
    );
    let streaming = false;
    let corked = false;
    try {
      const outcome = await this.turns.chat(body, {
        requestId: req.requestId,
        caller,
        clientSignal: gone.signal,
        onChunk: (chunk) => {
          if (!streaming) {
            streaming = true;
            res.status(200).setHeader('content-type', 'text/event-stream; charset=utf-8');
            // no-transform: the compression middleware would hold the chunks back.
            res.setHeader('cache-control', 'no-cache, no-transform');
            res.setHeader('connection', 'keep-alive');
          }
          // Chunks of one tick (the held role chunk and the first content, or a burst) leave in one write.
          if (!corked) {
            corked = true;
            res.cork();
            process.nextTick(() => {
              corked = false;
              res.uncork();
            });
          }
          // The upstream's bytes when the chunk is the upstream's, as it was: no second serialization.
          return paced.write(`data: ${upstreamJson(chunk) ?? JSON.stringify(chunk)}\n\n`);
        },
      });
      if (streaming) {
        res.end('data: [DONE]\n\n');
      } else if ((body as { stream?: unknown })?.stream === true) {
        // A stream that produced no chunk at all: still a well-formed (empty) stream.
        res.status(200).setHeader('content-type', 'text/event-stream; charset=utf-8');
        res.end('data: [DONE]\n\n');
      } else {
        const { completion } = outcome;
        sendJson(res, 200, completion, upstreamJson(completion) ?? JSON.stringify(completion));
      }
    } catch (e) {
      const error =
        e instanceof LlmError ? e : new LlmError(500, 'server_error', 'The gateway failed', 'internal_error');
      if (res.writableEnded || res.destroyed) return;
      if (streaming) {
        // Ended (deadline, interrupt, upstream failure) while the client was not taking the answer: no last frame, dropped.
        if (paced.stalled) return paced.drop();
        // Content already went out: the failure travels in-band, then the stream ends.
        res.end(`data: ${JSON.stringify(error.body())}\n\n`);
        return;
      }
      if (error.status === 499) error.extra.shouldRetry = false;
      sendLlmError(res, error);
    }
  }

  @Post('interrupt')
  @HttpCode(200)
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Stop a running request (any hub instance) by its x-request-id' })
  @ApiBody({ schema: { type: 'object', required: ['request_id'], properties: { request_id: { type: 'string' } } } })
  @ApiOkResponse({ type: InterruptedView })
  @ApiBadRequestResponse({ description: 'invalid_request_error: request_id' })
  @ApiNotFoundResponse({ description: 'request_not_found: nothing is running under that id' })
  async interrupt(@Body() body: unknown): Promise<{ request_id: string; interrupted: true }> {
    const id = (body as { request_id?: unknown } | null)?.request_id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 128)
      throw LlmError.invalid('request_id', 'request_id must be the x-request-id of a running request');
    if (!(await this.running.interrupt(id))) {
      throw new LlmError(
        404,
        'invalid_request_error',
        `No request is running under ${id}`,
        'request_not_found',
        'request_id',
      );
    }
    return { request_id: id, interrupted: true };
  }
}
