import { Injectable, type OnModuleInit } from '@nestjs/common';
import { parseDuration } from '../../common/duration.js';
import { AppConfig } from '../../config/app-config.js';
import { type RetentionBatch, untilShort } from '../retention/retention-policy.js';
import { RetentionRegistry } from '../retention/retention-registry.js';
import { AgentServicesRepository } from './agent-services.repository.js';
import { utcDay } from './proxy/connection-registry.js';
import { SessionStatsRepository } from './session-stats.repository.js';

/** Days of `peak_today` kept (only today's is read; the rest is for a look back in the database). */
const PEAK_DAYS = 7;
import { StatsRepository } from './stats.repository.js';

/**
 * Bounds of the agent-service history (docs/retention.md): health checks per service
 * (SERVICE_HEALTH_HISTORY), statistics samples (SERVICE_STATS_RETENTION) and ended sessions
 * (AGENT_SESSION_RETENTION), and the daily connection peaks (PEAK_DAYS).
 */
@Injectable()
export class AgentRetention implements OnModuleInit {
  constructor(
    private readonly config: AppConfig,
    private readonly services: AgentServicesRepository,
    private readonly stats: StatsRepository,
    private readonly sessions: SessionStatsRepository,
    private readonly registry: RetentionRegistry,
  ) {}

  onModuleInit(): void {
    this.registry.register({ name: 'service_health_checks', batches: (n) => this.healthChecks(n) });
    this.registry.register({
      name: 'service_stat_samples',
      batches: (limit) => {
        const seconds = parseDuration(this.config.SERVICE_STATS_RETENTION) ?? 7 * 86_400;
        return untilShort('service_stat_samples', limit, async () => ({ n: await this.stats.prune(seconds, limit) }));
      },
    });
    this.registry.register({
      name: 'agent_sessions',
      batches: (limit) => {
        const seconds = parseDuration(this.config.AGENT_SESSION_RETENTION) ?? 8 * 86_400;
        return untilShort('agent_sessions', limit, async () => ({ n: await this.sessions.prune(seconds, limit) }));
      },
    });
    this.registry.register({
      name: 'agent_connection_peaks',
      batches: (limit) =>
        untilShort('agent_connection_peaks', limit, async () => ({
          n: await this.sessions.prunePeaks(utcDay(), PEAK_DAYS, limit),
        })),
    });
  }

  private async *healthChecks(limit: number): AsyncGenerator<RetentionBatch> {
    const keep = this.config.SERVICE_HEALTH_HISTORY;
    for (const service of await this.services.all())
      yield* untilShort('service_health_checks', limit, async () => ({
        n: await this.services.pruneHealthHistory(service.id, keep, limit),
      }));
  }
}
