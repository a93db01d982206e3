import type { CodexMetricsData, CodexStatusData } from '../../contracts/sockets/ws-stream.js';
import type { StatisticsRows } from '../../modules/tasks/task-counts.repository.js';

/**
 * Task counts in the seed's words (`/healthz`, `/status`, `/metrics`, `/ws`): `pending` is the
 * Codex `queued` (hub pending + dispatched), `failed` includes timed out; there is no `dispatched`
 * or `timed_out` on this surface.
 */
export interface CodexTaskCounts {
  total: number;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export function codexTaskCounts(hub: Partial<Record<string, number>>): CodexTaskCounts {
  const n = (k: string): number => hub[k] ?? 0;
  const counts = {
    pending: n('pending') + n('dispatched'),
    running: n('running'),
    completed: n('completed'),
    failed: n('failed') + n('timed_out'),
    cancelled: n('cancelled'),
  };
  return { total: hub.total ?? Object.values(counts).reduce((a, b) => a + b, 0), ...counts };
}

/** What the process reports about itself for the `system` block. */
export interface ProcessSample {
  rssBytes: number;
  cpuPercent: number;
  uptimeSeconds: number;
}

export const megabytes = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)}MB`;

/**
 * The seed's `/metrics` `data` (also the `/ws` `metrics_update` data): memory like "128MB", cpu
 * like "15%", uptime in seconds, throughput in tasks completed in the last hour.
 */
export function codexMetricsView(c: StatisticsRows['counts'], p: ProcessSample): CodexMetricsData {
  const finished = c.completed + c.failed + c.timed_out;
  return {
    tasks: codexTaskCounts({
      total: c.total,
      pending: c.pending,
      dispatched: c.dispatched,
      running: c.running,
      completed: c.completed,
      failed: c.failed,
      timed_out: c.timed_out,
      cancelled: c.cancelled,
    }),
    performance: {
      avgExecutionTime: c.avg_processing_ms === null ? 0 : Math.round(Number(c.avg_processing_ms)),
      successRate: finished ? Math.round((c.completed / finished) * 10_000) / 10_000 : 0,
      throughput: c.completed_in_period,
      throughputUnit: 'tasks/hour',
    },
    system: { uptime: Math.round(p.uptimeSeconds), memory: megabytes(p.rssBytes), cpu: `${p.cpuPercent}%` },
  };
}

/** `/status` `data` and the `/ws` `status` message: tasks in the seed's words, uptime in ms like `/healthz`. */
export function codexStatusView(
  s: { version: string; tasks: Record<string, number>; nodes: { online: number; total: number } },
  draining: boolean,
): CodexStatusData {
  return {
    status: draining ? 'shutting_down' : 'running',
    version: s.version,
    uptime: Math.round(process.uptime() * 1000),
    tasks: codexTaskCounts(s.tasks),
    nodes: s.nodes,
    timestamp: new Date().toISOString(),
  };
}

/** `/status` `data` for a caller without a key (docs/security.md): the same fields, its counts null. */
export type CodexOpenStatusData = Omit<CodexStatusData, 'tasks' | 'nodes'> & { tasks: null; nodes: null };

export function codexOpenStatusView(version: string, draining: boolean): CodexOpenStatusData {
  return {
    status: draining ? 'shutting_down' : 'running',
    version,
    uptime: Math.round(process.uptime() * 1000),
    tasks: null,
    nodes: null,
    timestamp: new Date().toISOString(),
  };
}
