import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../common/redis.js';
import { PACKAGE } from '../../common/package-info.js';
import { AppConfig } from '../../config/app-config.js';
import { DatabaseStatus } from '../../database/database-status.js';
import { LlmHealth } from '../llm/llm-health.service.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { MetricsService } from './metrics.service.js';

/** `not_configured`: the hub runs without it (no REDIS_URL, no LLM provider); nothing is wrong. */
export type ComponentStatus = 'healthy' | 'unhealthy' | 'not_configured';

export interface ComponentHealth {
  status: ComponentStatus;
  /** The document's field; true for a component that is not configured (it cannot be failing). */
  healthy: boolean;
  response_time: number;
  last_checked: string;
  /** PostgreSQL server version, e.g. "18.4". */
  version?: string;
  /** The hub's own embedded server (no DATABASE_URL). */
  embedded?: boolean;
  error?: string;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  timestamp: string;
  version: string;
  uptime: string;
  uptime_seconds: number;
  /**
   * Always all three, as the document shows them (a client reads `components.cache.healthy`);
   * `cache` is Redis and `external_services` the LLM providers, `not_configured` without them.
   */
  components: {
    database: ComponentHealth;
    cache: ComponentHealth;
    external_services: ComponentHealth & { providers: unknown[] };
  };
  metrics: {
    memory_usage: string;
    rss_bytes: number;
    heap_used_bytes: number;
    cpu_usage: number;
    active_connections: number;
    /** Ready tasks of the caller's tenant (the hub's for a global key); null without a key (docs/security.md). */
    queue_size: number | null;
  };
}

function humanUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : `${m}m${Math.floor(seconds % 60)}s`;
}

/** The seed 002 `/health` document: components with response times, plus a few process numbers. */
@Injectable()
export class HealthService implements OnApplicationShutdown {
  readonly version = PACKAGE.version;
  private lastCpu = process.cpuUsage();
  private lastCpuAt = process.hrtime.bigint();

  private redis?: Redis;

  constructor(
    private readonly taskQueries: TaskQueriesService,
    private readonly database: DatabaseStatus,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly llm: LlmHealth,
  ) {}

  /** Redis answers PING (REDIS_URL only). */
  private async cache(): Promise<ComponentHealth> {
    if (!this.config.REDIS_URL) return notConfigured();
    this.redis ??= createRedisClient(this.config.REDIS_URL, 'health');
    const started = performance.now();
    try {
      if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect();
      await this.redis.ping();
      return {
        status: 'healthy',
        healthy: true,
        response_time: round(performance.now() - started),
        last_checked: new Date().toISOString(),
      };
    } catch (e) {
      return {
        status: 'unhealthy',
        healthy: false,
        response_time: round(performance.now() - started),
        last_checked: new Date().toISOString(),
        error: (e as Error).message,
      };
    }
  }

  /** The LLM providers' probe (src/modules/llm), with the component's status. */
  private async externalServices(): Promise<ComponentHealth & { providers: unknown[] }> {
    const providers = await this.llm.report();
    if (!providers) return { ...notConfigured(), providers: [] };
    return { status: providers.healthy ? 'healthy' : 'unhealthy', ...providers };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }

  /** `counts` false (a caller without a key): the database is probed all the same, its count not shown. */
  async report(counts = true): Promise<HealthReport> {
    const others = Promise.all([this.cache(), this.externalServices()]);
    const started = performance.now();
    let database: ComponentHealth;
    let queueSize = 0;
    try {
      queueSize = await this.taskQueries.countReady();
      database = {
        status: 'healthy',
        healthy: true,
        response_time: round(performance.now() - started),
        last_checked: new Date().toISOString(),
        ...this.database.server,
      };
    } catch (e) {
      this.database.failed(e); // an outage seen here first is reported (once) and probed like any other
      database = {
        status: 'unhealthy',
        healthy: false,
        response_time: round(performance.now() - started),
        last_checked: new Date().toISOString(),
        ...this.database.server,
        error: (e as Error).message,
      };
    }
    const [cache, external] = await others;
    const uptime = process.uptime();
    const memory = process.memoryUsage();
    return {
      // The hub serves without Redis or a provider; only its database decides.
      status: database.healthy ? 'healthy' : 'unhealthy',
      timestamp: new Date().toISOString(),
      version: this.version,
      uptime: humanUptime(uptime),
      uptime_seconds: Math.round(uptime),
      components: { database, cache, external_services: external },
      metrics: {
        memory_usage: `${Math.round(memory.rss / 1024 / 1024)}MB`,
        rss_bytes: memory.rss,
        heap_used_bytes: memory.heapUsed,
        cpu_usage: this.cpuPercent(),
        active_connections: this.metrics.activeConnections(),
        queue_size: counts ? queueSize : null,
      },
    };
  }

  /** CPU use of this process since the previous call, in percent of one core. */
  cpuPercent(): number {
    const now = process.hrtime.bigint();
    const usage = process.cpuUsage(this.lastCpu);
    const elapsedUs = Number(now - this.lastCpuAt) / 1000;
    this.lastCpu = process.cpuUsage();
    this.lastCpuAt = now;
    return elapsedUs > 0 ? round(((usage.user + usage.system) / elapsedUs) * 100) : 0;
  }
}

/** A component the hub runs without: shown all the same, so a client reading it finds it. */
const notConfigured = (): ComponentHealth => ({
  status: 'not_configured',
  healthy: true,
  response_time: 0,
  last_checked: new Date().toISOString(),
});

const round = (n: number): number => Math.round(n * 10) / 10;
