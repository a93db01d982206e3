import { Controller, Get, Headers, HttpCode, Post, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { Authenticated, Public } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { TasksService } from '../tasks/tasks.service.js';
import { HealthService } from './health.service.js';
import { HubStatusService } from './hub-status.service.js';
import { MetricsService } from './metrics.service.js';
import { ShutdownService } from './shutdown.service.js';

/** Codex Father's system endpoints: /healthz, /status, /metrics, /shutdown. */
@ApiTags('system')
@RawResponse()
@SkipRateLimit()
@Controller()
export class SystemController {
  constructor(
    private readonly health: HealthService,
    private readonly status: HubStatusService,
    private readonly metrics: MetricsService,
    private readonly tasks: TasksService,
    private readonly shutdown: ShutdownService,
  ) {}

  @Get('healthz')
  @Public()
  @ApiOperation({ summary: 'Liveness (Codex shape): status, version, uptime (ms), task counts, memory and CPU' })
  @ApiOkResponse({ schema: { example: { status: 'healthy', version: '0.1.0', uptime: 120500, tasks: { running: 2, pending: 5, completed: 42 }, system: { memory: '45MB', cpu: '12%' } } } })
  async healthz(): Promise<Record<string, unknown>> {
    // Liveness must not hang on the database: counts are best effort.
    const snapshot = await Promise.race([this.status.snapshot(), new Promise<null>((r) => setTimeout(() => r(null), 1000).unref())]).catch(() => null);
    return {
      status: this.shutdown.isDraining ? 'shutting_down' : 'healthy',
      version: this.health.version,
      uptime: Math.round(process.uptime() * 1000),
      tasks: snapshot
        ? { running: snapshot.tasks.running + snapshot.tasks.dispatched, pending: snapshot.tasks.pending, completed: snapshot.tasks.completed }
        : null,
      system: { memory: `${Math.round(process.memoryUsage().rss / 1024 / 1024)}MB`, cpu: `${this.health.cpuPercent()}%` },
    };
  }

  @Get('status')
  @Public()
  @ApiOperation({ summary: 'System status: tasks by state, nodes online, version, uptime' })
  async systemStatus(): Promise<Record<string, unknown>> {
    const snapshot = await this.status.snapshot();
    return { success: true, data: { status: this.shutdown.isDraining ? 'shutting_down' : 'running', ...snapshot }, timestamp: new Date().toISOString() };
  }

  @Get('metrics')
  @Public()
  @ApiOperation({ summary: 'Prometheus text exposition; the Codex JSON document with Accept: application/json' })
  @ApiProduces('text/plain', 'application/json')
  async metricsEndpoint(@Headers('accept') accept: string | undefined, @Res() res: Response): Promise<void> {
    if (accept?.includes('application/json')) {
      res.json(await this.jsonMetrics());
      return;
    }
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(await this.metrics.registry.metrics());
  }

  @Post('shutdown')
  @HttpCode(202)
  @Authenticated()
  @ApiOperation({ summary: 'Graceful stop (admin): new requests get 503, in-flight ones finish, devices and clients are told, exit 0' })
  shutdownNow(): Record<string, unknown> {
    setImmediate(() => void this.shutdown.begin('POST /shutdown', false));
    return { success: true, message: 'Shutting down', timestamp: new Date().toISOString() };
  }

  private async jsonMetrics(): Promise<Record<string, unknown>> {
    const stats = await this.tasks.statistics({ period: '1h', interval: 'hour' });
    const c = stats.counts;
    const finished = c.completed + c.failed + c.timed_out;
    return {
      tasks: { total: c.total, pending: c.pending + c.dispatched, running: c.running, completed: c.completed, failed: c.failed + c.timed_out, cancelled: c.cancelled },
      performance: {
        avgExecutionTime: c.avg_processing_ms === null ? 0 : Math.round(Number(c.avg_processing_ms)),
        successRate: finished ? Math.round((c.completed / finished) * 10_000) / 10_000 : 0,
        throughput: c.completed_in_period,
        throughputUnit: 'tasks/hour',
      },
      system: {
        memory: process.memoryUsage(),
        cpu: this.health.cpuPercent(),
        uptime: Math.round(process.uptime() * 1000),
      },
      timestamp: new Date().toISOString(),
    };
  }
}
