/** Agent services (seed 003): what the registry stores and what its parts pass around. */

export const SERVICE_STATUSES = ['stopped', 'starting', 'running', 'stopping', 'error'] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];

export const HEALTH_STATUSES = ['healthy', 'unhealthy', 'unknown'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export const HEALTH_CHECK_TYPES = ['http', 'tcp', 'ws'] as const;
export type HealthCheckType = (typeof HEALTH_CHECK_TYPES)[number];

/** `managed`: a child process the hub runs; `external`: an endpoint someone else runs. */
export type ServiceKind = 'managed' | 'external';

export interface HealthCheckSpec {
  type: HealthCheckType;
  /** HTTP path (http) or WebSocket path (ws). */
  path: string;
  /** Seconds between periodic checks. */
  interval: number;
  /** Seconds before one check counts as failed. */
  timeout: number;
}

export interface ServiceConfig {
  max_sessions: number;
  /** Seconds a proxied connection may stay idle before the hub closes it; 0 = never. */
  session_timeout: number;
  auto_restart: boolean;
  health_check_enabled: boolean;
  /** Crashes restarted within `restart_window` seconds before the hub gives up. */
  max_restarts: number;
  restart_window: number;
  /** Seconds a start waits for the first passing health check. */
  start_timeout: number;
  /**
   * Wrap client text frames as `{proxy_metadata, original_message}` (seed 003 §2.2: the manager
   * "adds management metadata" to what it relays). On by default, as the document has it; false
   * relays frames untouched.
   */
  proxy_metadata: boolean;
}

export const DEFAULT_HEALTH_CHECK: HealthCheckSpec = { type: 'tcp', path: '/', interval: 10, timeout: 5 };
export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  max_sessions: 100,
  session_timeout: 1800,
  auto_restart: true,
  health_check_enabled: true,
  max_restarts: 5,
  restart_window: 60,
  start_timeout: 15,
  proxy_metadata: true,
};

/** An agent_services row as the driver returns it. */
export interface ServiceRow {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  kind: ServiceKind;
  agent_factory_path: string | null;
  command: string | null;
  args: string[];
  cwd: string | null;
  env: Record<string, string>;
  host: string;
  /** As registered: 0 or null means "pick a free port at each start". */
  port: number | null;
  /** The port the running process was given. */
  runtime_port: number | null;
  endpoint: string | null;
  health_check: HealthCheckSpec;
  tags: string[];
  config: ServiceConfig;
  weight: number;
  status: ServiceStatus;
  desired_state: 'running' | 'stopped';
  health_status: HealthStatus;
  health_checked_at: Date | null;
  health_response_ms: number | null;
  health_message: string | null;
  pid: number | null;
  owner_instance: string | null;
  owner_seen_at: Date | null;
  restart_count: number;
  last_exit_code: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  stopped_at: Date | null;
}

/** Columns a registration writes. */
export type ServiceInput = Pick<
  ServiceRow,
  | 'name'
  | 'description'
  | 'kind'
  | 'agent_factory_path'
  | 'command'
  | 'args'
  | 'cwd'
  | 'env'
  | 'host'
  | 'port'
  | 'endpoint'
  | 'health_check'
  | 'tags'
  | 'config'
  | 'weight'
  | 'status'
  | 'desired_state'
>;

export interface HealthResult {
  status: Exclude<HealthStatus, 'unknown'>;
  response_time_ms: number;
  message: string | null;
}

export interface HealthCheckRow {
  id: string;
  service_id: string;
  status: HealthStatus;
  response_time_ms: number | null;
  message: string | null;
  checked_at: Date;
}

/** The WebSocket URL the proxy and health checks reach a service at. */
export function serviceEndpoint(s: Pick<ServiceRow, 'endpoint' | 'host' | 'port' | 'runtime_port'>): string | null {
  if (s.endpoint) return s.endpoint;
  const port = s.runtime_port ?? s.port;
  return port ? `ws://${s.host.includes(':') ? `[${s.host}]` : s.host}:${port}` : null;
}

/** A service that can take new proxied connections: running and not known to be unhealthy. */
export function isRoutable(s: Pick<ServiceRow, 'status' | 'health_status'>): boolean {
  return s.status === 'running' && s.health_status !== 'unhealthy';
}
