import { type ServiceRow, serviceEndpoint } from './agent-service.types.js';
import type { ProcessUsage } from './process-usage.js';
import type { StoredServiceStats } from './session-stats.repository.js';

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());
const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export interface ServiceLive {
  /** Stored counts (every hub process), with what this process has not stored yet. */
  stats: StoredServiceStats;
  usage: ProcessUsage | null;
}

/** Seed 003 service detail: registry fields, config, stats from the proxy's counters, health. */
export function mapService(s: ServiceRow, live: ServiceLive): Record<string, unknown> {
  const c = live.stats;
  const uptime =
    s.status === 'running' && s.started_at
      ? Math.max(0, Math.floor((Date.now() - new Date(s.started_at).getTime()) / 1000))
      : 0;
  const total = c.total_connections;
  return {
    service_id: s.id,
    name: s.name,
    description: s.description,
    kind: s.kind,
    host: s.host,
    port: s.runtime_port ?? s.port,
    endpoint: serviceEndpoint(s),
    status: s.status,
    tags: s.tags,
    weight: s.weight,
    agent_factory_path: s.agent_factory_path,
    command: s.command,
    args: s.args,
    cwd: s.cwd,
    health_check: s.health_check,
    config: s.config,
    pid: s.pid,
    restart_count: s.restart_count,
    last_exit_code: s.last_exit_code,
    last_error: s.last_error,
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
    started_at: iso(s.started_at),
    stopped_at: iso(s.stopped_at),
    stats: {
      total_connections: total,
      active_connections: c.active_connections,
      peak_connections: c.peak_connections,
      total_sessions: c.total_sessions,
      active_sessions: c.active_sessions,
      completed_sessions: c.completed_sessions,
      avg_session_duration: c.completed_sessions ? round(c.session_seconds / c.completed_sessions) : 0,
      messages: c.messages,
      avg_response_time_ms: c.responses ? round(c.response_ms_sum / c.responses) : null,
      uptime_seconds: uptime,
      memory_usage_mb: live.usage?.memory_mb ?? null,
      cpu_usage_percent: live.usage?.cpu_percent ?? null,
      error_count: c.errors,
      error_rate: total ? round(c.errors / total, 4) : 0,
    },
    health: {
      status: s.health_status,
      last_check: iso(s.health_checked_at),
      response_time_ms: s.health_response_ms,
      message: s.health_message,
    },
  };
}
