import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { Periodic } from '../../common/periodic.js';
import { isDatabaseUnavailable } from '../../database/database-status.js';
import { currentTenantSetting, DEFAULT_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { AgentServicesRepository } from './agent-services.repository.js';
import { processUsage } from './process-usage.js';
import { ProcessSupervisor } from './process-supervisor.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';
import { ConnectionRegistry, type ServiceCounters, utcDay } from './proxy/connection-registry.js';
import { type ServiceActivity, SessionStatsRepository } from './session-stats.repository.js';
import { type StatSample, StatsRepository, type TimeseriesMetric } from './stats.repository.js';

const THROUGHPUT_WINDOW_MS = 5 * 60 * 1000;
const LAST_SAMPLE_MS = 2000;
/** `*_today` counts from UTC midnight: the same day for every hub process, whatever its TZ. */
export const startOfDay = (): Date => {
  const d = new Date();
  d.setUTCHours(0, 0, 0, 0);
  return d;
};
const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Agent-service statistics: samples the proxy's counters into service_stat_samples every
 * STATS_SAMPLE_INTERVAL_MS (one row per service with activity plus a hub-wide row per tenant), and
 * answers /stats/overview and /stats/timeseries from those samples and the stored session and
 * connection counts (shared by every hub process, kept over restarts). Sessions left open by a
 * hub process that is gone are ended on each sample.
 */
@Injectable()
export class ServiceStatsService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('ServiceStats');
  private readonly sampler: Periodic;
  private readonly startedAt = new Date();

  constructor(
    private readonly stats: StatsRepository,
    private readonly stored: SessionStatsRepository,
    private readonly services: AgentServicesRepository,
    private readonly registry: ConnectionRegistry,
    private readonly supervisor: ProcessSupervisor,
    private readonly config: AppConfig,
  ) {
    this.sampler = new Periodic('stats sampler', this.logger, () => this.sample());
  }

  onApplicationBootstrap(): void {
    this.sampler.start(this.config.STATS_SAMPLE_INTERVAL_MS);
  }

  /**
   * A last sample while the database is still there, so the messages and answer times relayed
   * since the previous one are kept. Bounded: a database that is gone does not hold a shutdown.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.sampler.stop();
    let timer: NodeJS.Timeout | undefined;
    const last = this.sample().catch((e: unknown) => {
      if (!isDatabaseUnavailable(e)) this.logger.warn({ err: e }, 'last stats sample failed');
    });
    await Promise.race([last, new Promise((r) => (timer = setTimeout(r, LAST_SAMPLE_MS)))]);
    clearTimeout(timer);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sampler.stop();
  }

  /**
   * Writes one sample set: a row per service with counters or running, and a hub-wide row per
   * tenant with services (always one for `default`), so a tenant's hub series is its own.
   */
  async sample(): Promise<void> {
    const rows = await this.services.all();
    const byId = new Map(rows.map((s) => [s.id, s]));
    const samples: StatSample[] = [];
    const hubs = new Map<string, StatSample & { times: number[] }>();
    const hubOf = (tenant: string): StatSample & { times: number[] } => {
      let hub = hubs.get(tenant);
      if (!hub) {
        hub = {
          service_id: null,
          tenant_id: tenant,
          connections: 0,
          sessions: 0,
          opened: 0,
          messages: 0,
          errors: 0,
          response_time_ms: null,
          responses: 0,
          response_ms_sum: 0,
          times: [],
        };
        hubs.set(tenant, hub);
      }
      return hub;
    };
    hubOf(DEFAULT_TENANT);
    const activity: ServiceActivity[] = [];
    const taken: [ServiceCounters, StatSample][] = [];
    for (const [id, c] of this.registry.allCounters()) {
      const s = byId.get(id);
      if (!s) continue;
      const sample: StatSample = {
        service_id: id,
        tenant_id: s.tenant_id,
        connections: c.active_connections,
        sessions: this.registry.activeSessions(id),
        opened: c.openedSinceSample,
        messages: c.messagesSinceSample,
        errors: c.errorsSinceSample,
        response_time_ms: s.status === 'running' ? s.health_response_ms : null,
        responses: c.responsesSinceSample,
        response_ms_sum: c.responseMsSinceSample,
      };
      if (c.messagesSinceSample || c.responsesSinceSample)
        activity.push({
          service_id: id,
          messages: c.messagesSinceSample,
          responses: c.responsesSinceSample,
          response_ms_sum: c.responseMsSinceSample,
        });
      // Taken off the live counters only once stored (below): until then a reader adds them from
      // memory, so between this read and the insert's commit they are never in neither place.
      taken.push([c, sample]);
      samples.push(sample);
      const hub = hubOf(s.tenant_id);
      hub.connections += sample.connections;
      hub.sessions += sample.sessions;
      hub.opened += sample.opened;
      hub.messages += sample.messages;
      hub.errors += sample.errors;
      hub.responses += sample.responses;
      hub.response_ms_sum += sample.response_ms_sum;
    }
    for (const s of rows) {
      const hub = hubOf(s.tenant_id);
      if (s.status === 'running' && s.health_response_ms !== null) hub.times.push(s.health_response_ms);
      if (!this.registry.allCounters().has(s.id) && s.status === 'running') {
        samples.push({
          service_id: s.id,
          tenant_id: s.tenant_id,
          connections: 0,
          sessions: 0,
          opened: 0,
          messages: 0,
          errors: 0,
          response_time_ms: s.health_response_ms,
          responses: 0,
          response_ms_sum: 0,
        });
      }
    }
    for (const { times, ...hub } of hubs.values()) {
      hub.response_time_ms = times.length ? times.reduce((a, b) => a + b, 0) / times.length : null;
      samples.push(hub);
    }
    await this.stats.insert(samples);
    await this.stored.addActivity(activity);
    for (const [c, sample] of taken) {
      c.openedSinceSample -= sample.opened;
      c.messagesSinceSample -= sample.messages;
      c.errorsSinceSample -= sample.errors;
      c.responsesSinceSample -= sample.responses;
      c.responseMsSinceSample -= sample.response_ms_sum;
    }
    await this.stored.endOrphans(INSTANCE_ID);
  }

  async overview(): Promise<Record<string, unknown>> {
    const now = Date.now();
    const today = startOfDay();
    const byStatus = await this.stats.countByStatus();
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
    // This process's live counters and processes are every tenant's: a tenant counts its own services' only.
    const visible = currentTenantSetting() === SYSTEM_TENANT ? null : new Set(await this.services.ids());
    const mine = (id: string): boolean => !visible || visible.has(id);
    let unsampledMessages = 0;
    let unsampledResponses = 0;
    let unsampledResponseMs = 0;
    for (const [id, c] of this.registry.allCounters()) {
      if (!mine(id)) continue;
      unsampledMessages += c.messagesSinceSample;
      unsampledResponses += c.responsesSinceSample;
      unsampledResponseMs += c.responseMsSinceSample;
    }
    const windowStart = new Date(now - THROUGHPUT_WINDOW_MS);
    await this.registry.settled(); // this process's own writes are in what we read
    const hourAgo = new Date(now - 3600_000);
    const [counts, storedPeak, sampledPeak, recent, answers, avgHealth] = await Promise.all([
      this.stored.overview(today),
      this.stored.peakOf(currentTenantSetting(), utcDay(today)),
      this.stats.peakConnections(today),
      this.stats.messagesSince(windowStart),
      this.stats.responsesSince(hourAgo),
      this.stats.avgHealthResponseMs(hourAgo),
    ]);
    const responses = answers.responses + unsampledResponses;
    // Throughput over the window the numbers cover: stored samples plus what is not sampled yet.
    const since = Math.max(windowStart.getTime(), Math.min(this.startedAt.getTime(), recent.first?.getTime() ?? now));
    const minutes = Math.max((now - since) / 60_000, 1 / 60);
    const usage = (
      await Promise.all(
        this.supervisor.running
          .filter(mine)
          .map((id) => this.supervisor.pid(id))
          .filter((p): p is number => p !== null)
          .map(processUsage),
      )
    ).filter((u) => u !== null);
    return {
      services: {
        total,
        running: byStatus.running ?? 0,
        stopped: byStatus.stopped ?? 0,
        starting: byStatus.starting ?? 0,
        error: byStatus.error ?? 0,
      },
      connections: {
        total: counts.connections,
        active: counts.active_connections,
        peak_today: Math.max(
          storedPeak,
          sampledPeak,
          counts.active_connections,
          !visible && this.startedAt >= today ? this.registry.peak : 0,
        ),
      },
      // Sessions of today: the ones open now and the ones that ended since midnight (UTC).
      sessions: {
        total_today: counts.active_sessions + counts.completed_since,
        active: counts.active_sessions,
        completed_today: counts.completed_since,
      },
      performance: {
        // The agents' answers (docs/agent-services.md "Stats"); the health checks' time is beside it.
        avg_response_time_ms: responses ? round((answers.ms + unsampledResponseMs) / responses) : null,
        avg_health_check_ms: avgHealth,
        throughput_per_minute: round((recent.messages + unsampledMessages) / minutes),
        error_rate: counts.connections ? round(counts.errors / counts.connections, 4) : 0,
      },
      resources: {
        total_memory_mb: round(
          usage.reduce((a, u) => a + u.memory_mb, 0),
          1,
        ),
        total_cpu_percent: round(
          usage.reduce((a, u) => a + u.cpu_percent, 0),
          1,
        ),
        processes: usage.length,
      },
      day_starts_at: today.toISOString(),
    };
  }

  timeseries(
    metric: TimeseriesMetric,
    periodS: number,
    intervalS: number,
    serviceId: string | null,
  ): Promise<{ timestamp: string; value: number | null }[]> {
    return this.stats.timeseries(metric, periodS, intervalS, serviceId);
  }
}
