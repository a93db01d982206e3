import type { HubSchemas } from '../../sdk/hub-client.js';
import { type Cell, keyValues, table } from '../format.js';

/** The hub's seed 003 answers, typed by the contract (openapi.json → src/sdk/http/openapi-types.ts). */
export type ServiceView = HubSchemas['ServiceView'] & {
  /** Present on start/stop/restart answers. */ message?: string;
};
export type ServiceList = HubSchemas['ServiceListView'];
export type Registered = HubSchemas['RegisteredServiceView'];
export type Removed = HubSchemas['RemovedServiceView'];
/** GET /stats/overview: blocks of counters (printed in this order, unknown fields too). */
export type Overview = HubSchemas['StatsOverviewView'];
export type ServiceHealth = HubSchemas['ServiceHealthView'];
export type HealthCheck = HubSchemas['HealthCheckResultView'];
export type HealthHistory = HubSchemas['HealthHistoryView'];
export type LogEntry = HubSchemas['ServiceLogEntryView'];
export type ServiceLogs = HubSchemas['ServiceLogsView'];
/** The body of POST /api/v1/services. */
export type CreateService = HubSchemas['CreateServiceDto'];

const ms = (v: number | null | undefined): string | undefined =>
  v === null || v === undefined ? undefined : `${v} ms`;

/** `1h 2m 3s` */
export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return [h ? `${h}h` : '', h || m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}

function runs(s: ServiceView): string {
  if (s.kind === 'external') return `external endpoint ${s.endpoint ?? '-'}`;
  return [s.agent_factory_path ?? s.command ?? '', ...s.args].join(' ');
}

function status(s: ServiceView): string {
  const extra = [s.pid ? `pid ${s.pid}` : '', s.status === 'running' ? `up ${duration(s.stats.uptime_seconds)}` : ''];
  const shown = extra.filter(Boolean);
  return shown.length ? `${s.status} (${shown.join(', ')})` : s.status;
}

export function healthLine(h: {
  status: string;
  response_time_ms: number | null;
  last_check: string | null;
  message: string | null;
}): string {
  const parts = [
    ms(h.response_time_ms),
    h.last_check ? `checked ${h.last_check}` : undefined,
    h.message ?? undefined,
  ].filter(Boolean);
  return parts.length ? `${h.status} (${parts.join(', ')})` : h.status;
}

const pairs = (o: Record<string, unknown>): string =>
  Object.entries(o)
    .map(
      ([k, v]) => `${k}=${v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`,
    )
    .join(' ');

export function renderService(s: ServiceView): string {
  const st = s.stats;
  const hc = s.health_check;
  const usage = st.memory_usage_mb === null ? undefined : `${st.memory_usage_mb} MB, ${st.cpu_usage_percent ?? 0}% cpu`;
  return keyValues([
    ['service_id', s.service_id],
    ['name', s.name],
    ['description', s.description ?? undefined],
    ['status', status(s)],
    ['endpoint', s.endpoint],
    ['tags', s.tags.join(', ')],
    ['runs', runs(s)],
    ['health', healthLine(s.health)],
    ['health_check', `${hc.type} ${hc.path}, every ${hc.interval}s, timeout ${hc.timeout}s`],
    ['config', pairs(s.config)],
    ['connections', `${st.active_connections} active, ${st.total_connections} total, peak ${st.peak_connections}`],
    ['sessions', `${st.active_sessions} active, ${st.completed_sessions} completed, ${st.total_sessions} total`],
    ['messages', st.messages],
    ['errors', `${st.error_count} (rate ${st.error_rate})`],
    ['resources', usage],
    ['restarts', s.restart_count],
    ['last_error', s.last_error ?? undefined],
    ['created_at', s.created_at],
    ['started_at', s.started_at],
  ]);
}

/** After start/stop/restart: the hub's message and the fields that changed. */
export function renderLifecycle(s: ServiceView): string {
  const block = keyValues([
    ['name', s.name],
    ['status', status(s)],
    ['endpoint', s.endpoint],
    ['health', healthLine(s.health)],
  ]);
  return `${s.message ?? s.status}: ${s.name}\n${block}`;
}

export function renderServiceList(list: ServiceList): string {
  const { services, total, page } = list;
  if (services.length === 0) return `no services (total ${total})`;
  const rows: Cell[][] = services.map((s) => [
    s.name,
    s.status,
    s.health.status,
    s.endpoint,
    s.stats.active_connections,
    s.tags.join(','),
  ]);
  const body = table(['NAME', 'STATUS', 'HEALTH', 'ENDPOINT', 'CONNECTIONS', 'TAGS'], rows);
  const end = page.offset + services.length;
  return `${body}\n${page.offset + 1}-${end} of ${total}${page.has_next ? ` (more: --offset ${end})` : ''}`;
}

const OVERVIEW_BLOCKS = ['services', 'connections', 'sessions', 'performance', 'resources'];

/** One line per block: `services:     total=5 running=4 …`, then any scalar fields. */
export function renderOverview(o: Overview): string {
  const blocks = [...OVERVIEW_BLOCKS, ...Object.keys(o).filter((k) => !OVERVIEW_BLOCKS.includes(k))];
  const rows: [string, Cell][] = [];
  for (const k of blocks) {
    const v = (o as Record<string, unknown>)[k];
    if (v === undefined) continue;
    rows.push([k, v !== null && typeof v === 'object' ? pairs(v as Record<string, unknown>) : (v as Cell)]);
  }
  return keyValues(rows);
}

export function renderHealthCheck(check: HealthCheck, history: HealthHistory): string {
  const head = keyValues([
    ['service', check.name],
    ['status', check.status],
    ['response_time', ms(check.response_time_ms)],
    ['message', check.message],
    ['checked_at', check.checked_at],
  ]);
  if (history.history.length === 0) return head;
  const rows = history.history.map((h) => [h.checked_at, h.status, ms(h.response_time_ms), h.message]);
  return `${head}\n\nrecent checks (newest first):\n${table(['CHECKED_AT', 'STATUS', 'RESPONSE', 'MESSAGE'], rows)}`;
}

export function renderHealth(h: ServiceHealth): string {
  return keyValues([
    ['health', h.status],
    ['service_status', h.service_status],
    ['last_check', h.last_check],
    ['response_time', ms(h.response_time_ms)],
    ['message', h.message],
  ]);
}

/** `timestamp LEVEL source message`: one line per entry, the same with and without --follow. */
export function renderLogLine(e: LogEntry): string {
  return `${e.timestamp} ${e.level.toUpperCase().padEnd(5)} ${e.source.padEnd(6)} ${e.message}`;
}
