import { Controller, Get, Headers, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiExtension,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  codexOpenStatusView,
  codexStatusView,
  codexTaskCounts,
  megabytes,
} from '../../compat/codex/codex-system.view.js';
import { RawResponse } from '../../common/envelope.js';
import { currentTenantSetting } from '../../database/tenant-context.js';
import type { Principal } from '../auth/api-key.types.js';
import { Authenticated, CurrentPrincipal, GlobalAdmin, MetricsToken, Public } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { CodexMetricsService } from './codex-metrics.service.js';
import { HealthService } from './health.service.js';
import { HubStatusService } from './hub-status.service.js';
import { MetricsService } from './metrics.service.js';
import { ShutdownService } from './shutdown.service.js';
import { CodexHealthzView, CodexMetricsView, CodexStatusView, ShutdownAcceptedView } from './system.view.js';

/**
 * Codex Father's system endpoints: /healthz, /status, /metrics, /shutdown. What a caller without
 * a key sees is decided per route (docs/security.md): liveness and version, never a count.
 */
@ApiTags('system')
@RawResponse()
@SkipRateLimit()
@Controller()
export class SystemController {
  constructor(
    private readonly health: HealthService,
    private readonly status: HubStatusService,
    private readonly metrics: MetricsService,
    private readonly codexMetrics: CodexMetricsService,
    private readonly shutdown: ShutdownService,
  ) {}

  @Get('healthz')
  @Public()
  @ApiOperation({
    summary: 'Liveness (Codex shape): status, version, uptime (ms), task counts (with a key), memory and CPU',
    description: 'Open. The task counts are null without a valid key (docs/security.md).',
  })
  @ApiOkResponse({ type: CodexHealthzView })
  @ApiExtension('x-taskhub-no-4xx', 'open, never rate limited, takes no input that can be refused')
  async healthz(@CurrentPrincipal() who: Principal | undefined): Promise<Record<string, unknown>> {
    // Liveness must not hang on the database: counts are best effort, and only for a key.
    const snapshot = who
      ? await Promise.race([
          this.status.snapshot(),
          new Promise<null>((r) => setTimeout(() => r(null), 1000).unref()),
        ]).catch(() => null)
      : null;
    return {
      status: this.shutdown.isDraining ? 'shutting_down' : 'healthy',
      version: this.health.version,
      uptime: Math.round(process.uptime() * 1000),
      tasks: snapshot ? codexTaskCounts(snapshot.tasks) : null,
      system: { memory: megabytes(process.memoryUsage().rss), cpu: `${this.health.cpuPercent()}%` },
    };
  }

  @Get('status')
  @Public()
  @ApiOperation({
    summary: 'System status: tasks in the Codex words, nodes online (with a key), version, uptime (ms, as /healthz)',
    description:
      'Open: status, version and uptime for anyone; `tasks` and `nodes` are null without a valid key (docs/security.md).',
  })
  @ApiOkResponse({ type: CodexStatusView })
  @ApiExtension('x-taskhub-no-4xx', 'open, never rate limited, takes no input that can be refused')
  async systemStatus(
    @CurrentPrincipal() who: Principal | undefined,
    @Req() req: Request,
  ): Promise<Record<string, unknown>> {
    const draining = this.shutdown.isDraining;
    return {
      success: true,
      data: who
        ? codexStatusView(await this.status.snapshot(), draining)
        : codexOpenStatusView(this.health.version, draining),
      timestamp: new Date().toISOString(),
      requestId: req.requestId,
    };
  }

  @Get('metrics')
  @Authenticated('client', 'worker')
  @MetricsToken()
  @ApiOperation({
    summary:
      'The Codex JSON metrics document; Prometheus text for scrapers (Accept text/plain;version=0.0.4 or OpenMetrics) and ?format=prometheus',
    description:
      'Any API key (a tenant key counts its own tenant only), or `Authorization: Bearer <METRICS_TOKEN>` for the whole hub (docs/security.md).',
  })
  @ApiOkResponse({
    description: 'JSON (Codex document) or Prometheus text',
    content: {
      'application/json': { schema: { $ref: getSchemaPath(CodexMetricsView) } },
      'text/plain': { schema: { type: 'string', description: 'Prometheus text exposition (0.0.4)' } },
    },
  })
  @ApiExtraModels(CodexMetricsView)
  async metricsEndpoint(
    @Headers('accept') accept: string | undefined,
    @Query('format') format: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    if (format === 'prometheus' || (format !== 'json' && wantsPrometheus(accept))) {
      res.setHeader('Content-Type', this.metrics.registry.contentType);
      res.send(await this.metrics.exposition(currentTenantSetting()));
      return;
    }
    res.json({
      success: true,
      data: await this.codexMetrics.document(),
      timestamp: new Date().toISOString(),
      requestId: req.requestId,
    });
  }

  @Post('shutdown')
  @GlobalAdmin()
  @HttpCode(202)
  @Authenticated('admin')
  @ApiOperation({
    summary: 'Graceful stop (admin): new requests get 503, in-flight ones finish, devices and clients are told, exit 0',
  })
  @ApiResponse({ status: 202, type: ShutdownAcceptedView, description: 'Accepted: the hub stops' })
  shutdownNow(): Record<string, unknown> {
    setImmediate(() => void this.shutdown.begin('POST /shutdown', false));
    return { success: true, message: 'Shutting down', timestamp: new Date().toISOString() };
  }
}

/**
 * Prometheus scrapers ask for the text exposition (`text/plain;version=0.0.4`) or OpenMetrics,
 * and anyone naming `text/plain` gets text; curl (any type), browsers and JSON clients get the
 * seed's JSON document.
 */
export function wantsPrometheus(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  return a.includes('application/openmetrics-text') || a.includes('text/plain');
}
