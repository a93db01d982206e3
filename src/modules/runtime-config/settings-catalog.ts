import { maskProviders, parseProviders } from '../llm/llm-settings.js';
import type { AppConfig } from '../../config/app-config.js';

/**
 * Settings that change on a running hub (PATCH /v1/config). Each is read where it is used
 * (or its readers subscribe to RuntimeConfigService.onChange), so mutating the one AppConfig
 * instance is enough. Everything else is read once at boot and answers "needs a restart".
 */
export const HOT_KEYS = [
  'LOG_LEVEL',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
  'MAX_CONNECTIONS_PER_ADDRESS',
  'MAX_CONNECTIONS_PER_KEY',
  'MAX_PENDING_HANDSHAKES',
  'OUTBOUND_LIMIT_BYTES',
  'DISPATCH_STRATEGY',
  'DISPATCH_AT_INTAKE',
  'NODE_HEARTBEAT_INTERVAL_MS',
  'NODE_RECONNECT_GRACE_MS',
  'TASK_DEFAULT_TIMEOUT_SECONDS',
  'TASK_DEFAULT_MAX_RETRIES',
  'RETRY_BACKOFF_BASE_MS',
  'RETRY_BACKOFF_CAP_MS',
  'PROXY_DEFAULT_STRATEGY',
  'PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE',
  'LLM_PROVIDERS',
  'LLM_ALIASES',
  'LLM_FALLBACKS',
  'LLM_DEFAULT_MODEL',
  'LLM_ROUTING_STRATEGY',
  'LLM_COOLDOWN_MS',
  'LLM_MAX_REQUEST_MS',
  'LLM_ABORT_ON_DISCONNECT',
  'LLM_TOOL_MAX_STEPS',
  'LLM_TOOL_TIMEOUT_SECONDS',
  'LLM_SLOT_WAIT_MS',
  'LLM_SLOT_QUEUE_MAX',
  'TASK_RETENTION',
  'TASK_RETENTION_MAX_FINISHED',
  'TASK_RETENTION_GRACE',
  'TASK_EVENTS_MAX_PER_TASK',
  'PLUGIN_DELIVERY_RETENTION',
  'SERVICE_STATS_RETENTION',
  'AGENT_SESSION_RETENTION',
  'RETENTION_BATCH_SIZE',
  'NODE_LOG_RETENTION_LINES',
  'LLM_USAGE_RETENTION_DAYS',
  'SERVICE_HEALTH_HISTORY',
] as const satisfies readonly (keyof AppConfig)[];

export type HotKey = (typeof HOT_KEYS)[number];
export type SettingValue = string | number | boolean | null;

const HOT = new Set<string>(HOT_KEYS);
export const isHotKey = (key: string): key is HotKey => HOT.has(key);

/** One line per setting, as in src/config/app-config.ts. */
export const DESCRIPTIONS: Partial<Record<keyof AppConfig, string>> = {
  PORT: 'HTTP listen port',
  HOST: 'HTTP listen address',
  DATABASE_URL: 'postgres://… of a PostgreSQL server; unset: the embedded server in DATA_DIR/pg',
  DATA_DIR: 'Embedded database and admin.key directory',
  EMBEDDED_PG_PORT: 'Loopback port of the embedded PostgreSQL server; unset: a free one',
  DATABASE_POOL_SIZE: 'Connections to PostgreSQL',
  REDIS_URL: 'Redis for the Socket.IO adapter and shared rate limits',
  AUTH_REQUIRED: 'Bearer API keys on REST and sockets',
  METRICS_TOKEN: 'Bearer token a Prometheus scraper may send to GET /metrics instead of an API key (whole hub)',
  CORS_ORIGIN: 'Comma list of origins or *',
  CORS_CREDENTIALS: 'Send Access-Control-Allow-Credentials (the origin is echoed when CORS_ORIGIN is *)',
  CORS_METHODS: 'Comma list of methods allowed cross-origin',
  CORS_ALLOWED_HEADERS: 'Comma list of request headers allowed cross-origin; unset: those the preflight asks for',
  SECURITY_HEADERS: 'Security headers (helmet)',
  COMPRESSION: 'Compress large answers',
  COMPRESSION_MIN_BYTES: 'Smallest answer that is compressed, in bytes',
  TASK_MAX_ACTIVE: 'Tasks handed out (dispatched or running) at once across the hub; 0: no limit',
  RATE_LIMIT_MESSAGE: 'Message of the 429 error; unset: one naming the limit',
  RATE_LIMIT_SKIP_SUCCESSFUL: 'Requests answered below 400 do not count against the rate limit',
  RATE_LIMIT_SKIP_FAILED: 'Requests answered 400 or above do not count against the rate limit',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent',
  LOG_FORMAT: 'auto (human lines on a terminal, JSON otherwise), json or pretty',
  BODY_LIMIT_BYTES: 'Largest JSON body accepted, in bytes',
  HTTP_HEADERS_TIMEOUT_MS: 'An HTTP request whose headers have not all arrived after this long is answered 408',
  HTTP_REQUEST_TIMEOUT_MS: 'An HTTP request whose body has not all arrived after this long is answered 408',
  WS_HANDSHAKE_TIMEOUT_MS: 'A WebSocket upgrade not authenticated and upgraded after this long is closed',
  TRUST_PROXY:
    'Proxies whose X-Forwarded-For is believed for the client address (as Express trust proxy): false, true, a hop count, or a comma list of addresses/CIDRs/loopback/linklocal/uniquelocal',
  MAX_CONNECTIONS_PER_ADDRESS: 'Socket connections from one source address, all channels; 0: no limit',
  MAX_CONNECTIONS_PER_KEY: 'Socket connections of one API key on each channel; 0: no limit',
  MAX_PENDING_HANDSHAKES: 'WebSocket upgrades waiting for their key check at once',
  OUTBOUND_LIMIT_BYTES: 'Bytes queued to a peer that is not reading before its connection is closed (SLOW_CONSUMER)',
  WS_MAX_FRAME_BYTES: 'Largest inbound message of the raw /ws stream',
  LOG_CHANNEL_MAX_FRAME_BYTES: 'Largest inbound frame of the Apex log channel',
  SOCKET_IO_MAX_MESSAGE_BYTES: 'Largest inbound Socket.IO message (device channel, /events)',
  TASK_DEFAULT_TIMEOUT_SECONDS: 'Timeout of a task submitted without timeout_seconds (new tasks)',
  TASK_DEFAULT_MAX_RETRIES: 'Retries of a task submitted without max_retries (new tasks)',
  TASK_LEASE_SECONDS: 'A heartbeat pushes the lease at least this far into the future',
  RETRY_BACKOFF_BASE_MS: 'Retry backoff: base of the exponential (failures from now on)',
  RETRY_BACKOFF_CAP_MS: 'Retry backoff: longest wait (failures from now on)',
  DISPATCH_STRATEGY: 'How the dispatcher picks among eligible nodes (next round)',
  DISPATCH_SAFETY_TICK_MS: 'Safety net under the event-driven dispatcher',
  DISPATCH_AT_INTAKE: 'A submission to an idle node with no queue before it is assigned in its own insert',
  DISPATCH_NOTIFY: 'LISTEN/NOTIFY wake-ups between hub processes',
  NODE_HEARTBEAT_INTERVAL_MS: 'Heartbeat interval told to devices at register (registrations from now on)',
  SOCKET_PING_INTERVAL_MS: 'Socket.IO ping interval',
  SOCKET_PING_TIMEOUT_MS: 'Socket.IO ping timeout',
  HUB_INSTANCE_HEARTBEAT_MS: 'How often this process refreshes its hub_instances row',
  HUB_INSTANCE_STALE_MS: 'A hub instance silent this long is gone',
  HUB_INSTANCE_NAME: 'Who this process is across restarts (default <hostname>:<PORT>)',
  DISPATCH_ACK_TIMEOUT_MS: 'An unacknowledged assignment is re-sent, then released, after this long',
  REPORT_RETRY_MS: 'How long a report that hits a database outage is retried',
  SHUTDOWN_TIMEOUT_MS: 'Bound on a graceful stop',
  NODE_RECONNECT_GRACE_MS: 'A disconnected node keeps its tasks this long (next liveness tick)',
  NODE_LIVENESS_TICK_MS: 'How often node liveness is checked',
  RATE_LIMIT_MAX: 'Requests per window per API key (per IP with auth off); 0 turns the limit off',
  RATE_LIMIT_WINDOW_MS: 'Rate limit window (windows opened from now on)',
  METRICS_UPDATE_INTERVAL_MS: 'Period of metrics_update to clients',
  WS_ENABLED: 'Serve the raw WebSocket /ws stream',
  WS_HEARTBEAT_INTERVAL_MS: 'Raw WebSocket /ws ping interval',
  WS_MAX_CONNECTIONS: 'Raw WebSocket /ws connection limit',
  SERVICE_STOP_GRACE_MS: 'Agent services: SIGTERM to SIGKILL grace',
  SERVICE_HEALTH_TICK_MS: 'How often due health checks are looked for',
  SERVICE_HEALTH_HISTORY: 'Health checks kept per service',
  NODE_LOG_RETENTION_LINES: 'Node log lines kept (the newest)',
  SERVICE_LOG_LINES: 'Output lines kept per service',
  SERVICE_OWNER_STALE_MS: 'A hub silent this long no longer owns its managed services',
  PROXY_DEFAULT_STRATEGY: 'WebSocket proxy strategy when no rule matches and the client gave no hint (new connections)',
  PROXY_MAX_FRAME_BYTES: 'Largest proxied WebSocket frame, in bytes',
  PROXY_HIGH_WATER_BYTES: 'Bytes a proxied connection may queue before reading pauses',
  STATS_SAMPLE_INTERVAL_MS: 'Agent-service statistics sampling period',
  PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE: 'Plugin callbacks accepted per plugin and source address per minute',
  SWEEP_INTERVAL_MS: 'How often expired leases are swept',
  LLM_USAGE_RETENTION_DAYS: 'LLM usage rows are kept this many days',
  TASK_RETENTION: 'Finished tasks and their events are removed this long after they finished; 0/off: never by age',
  TASK_RETENTION_MAX_FINISHED: 'Finished tasks kept per tenant at most (oldest removed first); 0: no count bound',
  TASK_RETENTION_GRACE: 'No finished task is removed sooner than this after it finished',
  TASK_EVENTS_MAX_PER_TASK: 'Events kept per task (the newest); 0: no cap',
  PLUGIN_DELIVERY_RETENTION: 'Plugin callback webhook-ids are remembered this long (de-duplication)',
  SERVICE_STATS_RETENTION: 'Agent-service statistics samples are kept this long',
  AGENT_SESSION_RETENTION: 'Ended agent sessions are kept this long',
  RETENTION_INTERVAL_MS: 'How often the retention cleaner runs (one hub at a time); 0: never on its own',
  RETENTION_BATCH_SIZE: 'Rows one retention statement removes at most',
};

/** Names that may hold credentials. */
const SECRET_NAME = /URL|SECRET|TOKEN|PASSWORD|KEY$/;
export const MASK = '****';

/**
 * What a client may see of a setting's value. URLs keep everything but their password (and
 * credential-looking query parameters): `postgres://u:****@h/db`; any other secret-named
 * value is `****` as a whole. Other settings are shown as they are.
 */
export function maskSetting(key: string, value: SettingValue): SettingValue {
  // The providers' JSON holds their API keys: shown with each key masked.
  if (key === 'LLM_PROVIDERS' && typeof value === 'string') {
    const parsed = parseProviders(value);
    return parsed.ok ? JSON.stringify(maskProviders(parsed.value)) : MASK;
  }
  if (!SECRET_NAME.test(key) || value === null || value === '') return value;
  if (typeof value !== 'string') return value;
  if (!/URL/.test(key)) return MASK;
  return maskUrl(value);
}

const SECRET_PARAM = /pass|secret|token|key|auth|sslcert|sslkey/i;

export function maskUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not parseable: hide whatever sits between "scheme://user:" and "@", or all of it.
    const masked = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, `$1${MASK}@`);
    return masked === value && value.includes('@') ? MASK : masked;
  }
  if (url.password) url.password = MASK;
  for (const name of [...url.searchParams.keys()]) if (SECRET_PARAM.test(name)) url.searchParams.set(name, MASK);
  return url.toString();
}
