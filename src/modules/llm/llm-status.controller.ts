import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated } from '../auth/auth.decorators.js';
import { LlmGateway } from './llm-gateway.service.js';
import { LlmRouter } from './llm-router.js';
import { RunningRequests } from './running-requests.js';
import { LlmStatusView } from './llm-status.view.js';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';

/** Outcomes older than this are not counted (the router keeps one minute). */
const WINDOW_MS = 60_000;

/**
 * What the gateway is doing right now in this hub process (the dashboard's LLM view): each
 * deployment's cooldown and last minute, and the requests in flight and those waiting for a slot (to interrupt one:
 * POST /v1/interrupt, which reaches every hub).
 */
@ApiTags('llm')
@Controller('api/v1/llm/status')
export class LlmStatusController {
  constructor(
    private readonly router: LlmRouter,
    private readonly running: RunningRequests,
    private readonly gateway: LlmGateway,
  ) {}

  @Get()
  @Authenticated('admin')
  @ApiEnvelope(LlmStatusView)
  @ApiOperation({ summary: 'Deployments with cooldowns and recent errors, and running requests, on this hub (admin)' })
  status(): LlmStatusView {
    const now = Date.now();
    return {
      waiting: this.gateway.waiting,
      deployments: this.router.deployments().map((d) => {
        const recent = d.outcomes.filter((o) => o.at >= now - WINDOW_MS);
        return {
          provider: d.provider.name,
          model: d.model,
          in_flight: d.inFlight,
          max_concurrency: d.provider.max_concurrency ?? null,
          cooldown_until: d.cooldownUntil > now ? new Date(d.cooldownUntil).toISOString() : null,
          calls_last_minute: recent.length,
          errors_last_minute: recent.filter((o) => !o.ok).length,
        };
      }),
      running: this.running.list().map((r) => ({
        request_id: r.requestId,
        model: r.model,
        key_id: r.keyId,
        node_id: r.nodeId ?? null,
        started_at: r.startedAt.toISOString(),
      })),
    };
  }
}
