import { plainToInstance, Transform } from 'class-transformer';
import {
  getMetadataStorage,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateBy,
  validateSync,
} from 'class-validator';
import { parseDuration } from '../common/duration.js';
import { trustProxyProblem } from '../modules/edge/client-address.js';
import { parseAliases, parseFallbacks, parseProviders } from '../modules/llm/llm-settings.js';

const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  if (['true', '1', 'yes', 'on'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no', 'off'].includes(value.toLowerCase())) return false;
  return value;
};
const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

/** A JSON setting checked by one of the LLM parsers (the message names the field inside it). */
function IsLlmJson(parse: (raw: unknown, field: string) => { ok: boolean; message?: string }): PropertyDecorator {
  return ValidateBy({
    name: 'isLlmJson',
    validator: {
      validate: (value: unknown, args) => parse(value, args?.property ?? 'value').ok,
      defaultMessage: (args) => {
        const r = parse(args?.value, args?.property ?? 'value') as { message?: string };
        return r.message ?? 'invalid';
      },
    },
  });
}

/** TRUST_PROXY: `false`, `true`, a hop count or a list proxy-addr compiles. */
function IsTrustProxy(): PropertyDecorator {
  return ValidateBy({
    name: 'isTrustProxy',
    validator: {
      validate: (value: unknown) => trustProxyProblem(value) === null,
      defaultMessage: (args) =>
        `${trustProxyProblem(args?.value) ?? 'invalid'} (false, true, a hop count, or a comma list of addresses, CIDRs, loopback, linklocal, uniquelocal)`,
    },
  });
}

/** A duration setting (src/common/duration.ts): `0`/`off` (when `allowOff`) or at least `minSeconds`. */
function IsRetention(minSeconds: number, allowOff = true): PropertyDecorator {
  const ok = (value: unknown): boolean => {
    const s = parseDuration(value);
    return s !== undefined && (s === 0 ? allowOff : s >= minSeconds);
  };
  return ValidateBy({
    name: 'isRetention',
    validator: {
      validate: ok,
      defaultMessage: () =>
        `must be a duration like 90s, 30m, 12h, 7d or 2w (a bare number is seconds) of at least ${minSeconds} s${allowOff ? ', or 0/off' : ''}`,
    },
  });
}

/**
 * Every setting the hub reads from the environment. Validated once at boot:
 * a bad value stops the start with a message naming the variable.
 */
export class AppConfig {
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  HOST = '0.0.0.0';

  /** postgres://… of a PostgreSQL server; unset → the embedded PostgreSQL server, its data in DATA_DIR/pg. Secret. */
  @IsOptional()
  @IsString()
  DATABASE_URL?: string;

  @IsString()
  DATA_DIR = './data';

  /** Loopback port of the embedded PostgreSQL server (no DATABASE_URL); unset → a free one. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  EMBEDDED_PG_PORT?: number;

  /** Connections to PostgreSQL, embedded or not. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(500)
  DATABASE_POOL_SIZE = 20;

  @IsOptional()
  @IsString()
  REDIS_URL?: string;

  @Transform(toBool)
  @IsBoolean()
  AUTH_REQUIRED = true;

  /**
   * A scrape token for `GET /metrics` only (`Authorization: Bearer <token>`, Prometheus
   * `authorization` / `bearer_token`), seeing the whole hub as a global admin key does. Unset:
   * /metrics needs an API key. At least 16 characters (the route is never rate limited). Secret.
   */
  @IsOptional()
  @IsString()
  @MinLength(16)
  @Matches(/^\S+$/, { message: 'a bearer token has no whitespace' })
  METRICS_TOKEN?: string;

  /** Comma list of origins or `*`. */
  @IsString()
  CORS_ORIGIN = '*';

  /**
   * Send `Access-Control-Allow-Credentials: true` (seed 000 `cors.credentials`). With CORS_ORIGIN
   * `*` the request's origin is echoed, since browsers refuse `*` with credentials.
   */
  @Transform(toBool)
  @IsBoolean()
  CORS_CREDENTIALS = false;

  /** Comma list of methods allowed cross-origin (seed 000 `cors.methods`). */
  @IsString()
  CORS_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';

  /** Comma list of request headers allowed cross-origin (seed 000 `cors.allowedHeaders`); unset → those the preflight asks for. */
  @IsOptional()
  @IsString()
  CORS_ALLOWED_HEADERS?: string;

  /** Security headers (helmet; seed 000 `security.helmet`). */
  @Transform(toBool)
  @IsBoolean()
  SECURITY_HEADERS = true;

  /** gzip/deflate of large answers (seed 000 `security.compression`). */
  @Transform(toBool)
  @IsBoolean()
  COMPRESSION = true;

  /**
   * Answers smaller than this are sent as they are. A task's JSON (~1-2 KB) fits in one or two
   * segments either way, while deflating it costs both ends more than the bytes it saves (a
   * fresh zlib stream per answer: W3 measured ~1 ms of hub and client CPU per pickup at 1 KB).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(100 * 1024 * 1024)
  COMPRESSION_MIN_BYTES = 8192;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /** Log lines: `auto` is human (pino-pretty) on a terminal and JSON otherwise; `json` or `pretty` always (docs/observability.md). */
  @IsIn(['auto', 'json', 'pretty'])
  LOG_FORMAT: 'auto' | 'json' | 'pretty' = 'auto';

  /** Largest JSON body accepted, in bytes. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  BODY_LIMIT_BYTES = 1024 * 1024;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(7 * 24 * 3600)
  TASK_DEFAULT_TIMEOUT_SECONDS = 1800;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(100)
  TASK_DEFAULT_MAX_RETRIES = 3;

  /**
   * At most this many tasks handed out (dispatched or running) at once across the hub, by push
   * and pull alike (seed 000 `runner.maxConcurrency`); 0 = no limit beyond each node's capacity.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TASK_MAX_ACTIVE = 0;

  /** A heartbeat pushes the lease at least this far into the future. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  TASK_LEASE_SECONDS = 60;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  RETRY_BACKOFF_BASE_MS = 1000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  RETRY_BACKOFF_CAP_MS = 5 * 60 * 1000;

  /** How the dispatcher picks among eligible nodes. */
  @IsIn(['least-loaded', 'round-robin', 'random'])
  DISPATCH_STRATEGY: 'least-loaded' | 'round-robin' | 'random' = 'least-loaded';

  /** Safety net under the event-driven dispatcher (e.g. tasks made ready by another process). */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  DISPATCH_SAFETY_TICK_MS = 5000;

  /**
   * A submission that finds an idle node and no queue in front of it is assigned in its own
   * insert (one commit per pickup) instead of by the next dispatch round.
   */
  @Transform(toBool)
  @IsBoolean()
  DISPATCH_AT_INTAKE = true;

  /** LISTEN/NOTIFY wake-ups between hub processes (real PostgreSQL only). */
  @Transform(toBool)
  @IsBoolean()
  DISPATCH_NOTIFY = true;

  /**
   * Devices are told to heartbeat this often. Heartbeats refresh `last_heartbeat` and carry
   * status; their absence never takes a device with a live socket offline (liveness comes
   * from the transport: SOCKET_PING_*).
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  NODE_HEARTBEAT_INTERVAL_MS = 10_000;

  /** Socket.IO ping-pong: a peer silent for interval + timeout is dead and its socket closes. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  SOCKET_PING_INTERVAL_MS = 10_000;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  SOCKET_PING_TIMEOUT_MS = 10_000;

  /** Each hub process refreshes its row in hub_instances this often. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  HUB_INSTANCE_HEARTBEAT_MS = 2000;

  /** A hub instance silent this long is gone: its nodes are offline and their reconnect grace starts. */
  @Transform(toInt)
  @IsInt()
  @Min(500)
  HUB_INSTANCE_STALE_MS = 10_000;

  /**
   * Who this process is across restarts (default `<hostname>:<PORT>`): a new process with the
   * same name knows the old one is dead at boot instead of waiting for HUB_INSTANCE_STALE_MS.
   */
  @IsOptional()
  @IsString()
  HUB_INSTANCE_NAME?: string;

  /**
   * Devices that acknowledge assignments (the SDK, `acks: true`, or any that answered an ack
   * once): an assignment unacknowledged this long is re-sent once, then given to another node.
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  DISPATCH_ACK_TIMEOUT_MS = 10_000;

  /** A report (progress, result, log, complete) that hits a database outage is retried this long. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  REPORT_RETRY_MS = 60_000;

  /** SIGTERM or POST /shutdown: the whole stop (drain, sockets, managed services, database) within this bound. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  /** A disconnected node keeps its tasks this long, so a quick reconnect loses nothing. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  NODE_RECONNECT_GRACE_MS = 15_000;

  /** How often node liveness is checked. */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  NODE_LIVENESS_TICK_MS = 1000;

  /** Requests per window per API key (per IP with auth off); 0 turns the limit off. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RATE_LIMIT_MAX = 6000;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  RATE_LIMIT_WINDOW_MS = 60_000;

  /** The 429 error's message (seed 000 `rateLimit.message`); unset → one naming the limit. */
  @IsOptional()
  @IsString()
  RATE_LIMIT_MESSAGE?: string;

  /** Requests answered below 400 do not count against the limit (seed 000 `rateLimit.skipSuccessfulRequests`). */
  @Transform(toBool)
  @IsBoolean()
  RATE_LIMIT_SKIP_SUCCESSFUL = false;

  /** Requests answered 400 or above do not count against the limit (seed 000 `rateLimit.skipFailedRequests`). */
  @Transform(toBool)
  @IsBoolean()
  RATE_LIMIT_SKIP_FAILED = false;

  /** Period of `metrics_update` to clients that asked for it. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  METRICS_UPDATE_INTERVAL_MS = 5000;

  /** Serve the raw WebSocket /ws stream (seed 000 `enableWebSocket`). */
  @Transform(toBool)
  @IsBoolean()
  WS_ENABLED = true;

  /** Raw WebSocket /ws: ping every interval (dead peers are dropped), and at most this many connections. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  WS_HEARTBEAT_INTERVAL_MS = 30_000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  WS_MAX_CONNECTIONS = 1000;

  /** Agent services: a stop waits this long after SIGTERM before SIGKILL. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SERVICE_STOP_GRACE_MS = 5000;

  /** How often due health checks are looked for (each service has its own interval). */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  SERVICE_HEALTH_TICK_MS = 1000;

  /** Health checks kept per service for /health/services/:id/history (older ones removed by the retention cleaner). Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  SERVICE_HEALTH_HISTORY = 1000;

  /** Lines of process output and lifecycle events kept per service. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  SERVICE_LOG_LINES = 2000;

  /** A hub silent this long no longer owns its managed services; another hub restarts them. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  SERVICE_OWNER_STALE_MS = 15_000;

  /** Strategy of the WebSocket proxy when no routing rule matches and the client gave no hint. */
  @IsIn(['round_robin', 'least_connections', 'random', 'weighted', 'hash'])
  PROXY_DEFAULT_STRATEGY: 'round_robin' | 'least_connections' | 'random' | 'weighted' | 'hash' = 'least_connections';

  /** Largest proxied WebSocket frame, in bytes. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  PROXY_MAX_FRAME_BYTES = 16 * 1024 * 1024;

  /** Bytes a proxied connection may queue (to a slow peer, or while failing over) before reading pauses. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  PROXY_HIGH_WATER_BYTES = 4 * 1024 * 1024;

  /** Agent-service statistics are sampled this often into service_stat_samples (/stats/timeseries). */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  STATS_SAMPLE_INTERVAL_MS = 60_000;

  /** Node log lines kept in node_logs for GET /api/v1/logs (older ones are removed by the retention cleaner). Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  NODE_LOG_RETENTION_LINES = 100_000;

  /** Largest frame of the raw WebSocket node channel (seed 001), in bytes; larger ones are refused with an `error` frame. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  NODE_CHANNEL_MAX_FRAME_BYTES = 1024 * 1024;

  /** Plugin callbacks accepted per plugin and source address per minute (then 429). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE = 60;

  /** After POST /api/v1/plugins/:name/rotate the previous secret and token keep working this long. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  PLUGIN_ROTATION_GRACE_SECONDS = 86_400;

  /**
   * LLM gateway: JSON array of OpenAI-compatible upstreams `[{name, base_url, api_key?, models,
   * weight?, timeout_ms?, max_concurrency?}]`. Secret (api keys). Hot: PUT /v1/config/llm.
   */
  @IsString()
  @IsLlmJson(parseProviders)
  LLM_PROVIDERS = '[]';

  /** JSON object `{alias: model}`. */
  @IsString()
  @IsLlmJson(parseAliases)
  LLM_ALIASES = '{}';

  /** JSON object `{model: [fallback models]}`, tried when a model's deployments all failed before content. */
  @IsString()
  @IsLlmJson(parseFallbacks)
  LLM_FALLBACKS = '{}';

  /** Model of a request that names none. */
  @IsOptional()
  @IsString()
  LLM_DEFAULT_MODEL?: string;

  /** `weighted` (random by provider weight) or `least-busy` (fewest calls in flight). */
  @IsIn(['weighted', 'least-busy'])
  LLM_ROUTING_STRATEGY: 'weighted' | 'least-busy' = 'weighted';

  /** A deployment failing more than half its calls in the last minute, or answering 401/403, rests this long. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  LLM_COOLDOWN_MS = 5000;

  /** A gateway request is stopped after this long (stream or not). */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  LLM_MAX_REQUEST_MS = 5 * 60 * 1000;

  /**
   * A chat whose model calls tools the hub runs (docs/tools.md): at most this many model calls
   * in one turn; a model still calling tools after the last ends the turn with
   * `tool_step_limit`. 0 turns tool execution off (tool calls go back to the client). Hot.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(100)
  LLM_TOOL_MAX_STEPS = 8;

  /** How long a tool task may run on its node (its `timeout_seconds`); the turn's deadline is LLM_MAX_REQUEST_MS. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86_400)
  LLM_TOOL_TIMEOUT_SECONDS = 120;

  /** A client that disconnects aborts its upstream call. */
  @Transform(toBool)
  @IsBoolean()
  LLM_ABORT_ON_DISCONNECT = true;

  /**
   * A gateway request whose deployments are all at their max_concurrency waits this long for a
   * slot (handed out fairly between tenants, docs/llm.md), then answers 503
   * `no_available_deployment`. 0: refused at once.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  LLM_SLOT_WAIT_MS = 10_000;

  /** Gateway requests waiting for a slot on this hub at most; one more is refused at once (503 `no_available_deployment`). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  LLM_SLOT_QUEUE_MAX = 1000;

  /** LLM usage rows (one per upstream call, GET /api/v1/llm/usage) are kept this many days; older ones are removed by the retention cleaner. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3650)
  LLM_USAGE_RETENTION_DAYS = 30;

  // The edge (docs/edge.md): every wait and every buffer a client can hold is bounded.

  /** HTTP: a request whose headers have not all arrived this long after it began is answered 408 and closed (Node's headersTimeout). */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  HTTP_HEADERS_TIMEOUT_MS = 15_000;

  /** HTTP: a request whose body has not all arrived this long after it began is answered 408 and closed (Node's requestTimeout; answers, long polls and streams are not bounded by it). */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  HTTP_REQUEST_TIMEOUT_MS = 60_000;

  /** Raw WebSocket upgrades: a handshake not authenticated and upgraded this long after its request arrived is closed. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  WS_HANDSHAKE_TIMEOUT_MS = 10_000;

  /**
   * Proxies in front of the hub whose X-Forwarded-For is believed, as Express's `trust proxy`:
   * `false` (the socket's peer is the client), `true`, a hop count, or a comma list of
   * addresses / CIDRs / `loopback`, `linklocal`, `uniquelocal`. The client address (the
   * right-most untrusted hop) is what per-address limits, rate limits, the agent proxy's
   * client_ip and request logs use.
   */
  @IsTrustProxy()
  TRUST_PROXY = 'false';

  /** WebSocket and Socket.IO connections (and handshakes) from one source address, all channels together; 0: no limit. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  MAX_CONNECTIONS_PER_ADDRESS = 1000;

  /** WebSocket and Socket.IO connections of one API key on each channel; 0: no limit. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  MAX_CONNECTIONS_PER_KEY = 10_000;

  /** Raw WebSocket upgrades waiting for their key check at once, hub-wide (more are refused 503). Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_PENDING_HANDSHAKES = 500;

  /** Bytes queued to one connection whose peer is not reading (any socket channel, streamed answers); past it the connection is closed (1008 SLOW_CONSUMER). Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(16 * 1024)
  OUTBOUND_LIMIT_BYTES = 8 * 1024 * 1024;

  /** Largest inbound message of the raw /ws stream (larger ones close the connection 1009). */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WS_MAX_FRAME_BYTES = 64 * 1024;

  /** Largest inbound frame of the Apex log channel (listen-only; larger ones close the connection 1009). */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  LOG_CHANNEL_MAX_FRAME_BYTES = 4096;

  /** Largest inbound Socket.IO message (device channel and /events; engine.io's maxHttpBufferSize: larger ones close the connection). */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  SOCKET_IO_MAX_MESSAGE_BYTES = 1_000_000;

  /** How often expired leases are swept. */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  SWEEP_INTERVAL_MS = 1000;

  /** How often each hub looks for due schedules (docs/schedules.md); 0: this hub fires none. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SCHEDULES_POLL_MS = 1000;

  // Retention (docs/retention.md): every table that grows has a bound, enforced by one cleaner.

  /** Finished tasks (and their events) are removed this long after they finished; 0/off: never by age. Per tenant: limits.retention.age. Hot. */
  @IsRetention(1)
  TASK_RETENTION = '7d';

  /** At most this many finished tasks are kept per tenant (the oldest go first); 0: no count bound. Per tenant: limits.retention.max_finished. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TASK_RETENTION_MAX_FINISHED = 100_000;

  /** No finished task is removed sooner than this after it finished, whatever the bounds (longer than the longest wait_seconds, 60). Hot. */
  @IsRetention(1)
  TASK_RETENTION_GRACE = '2m';

  /** Events kept per task (the newest); older ones of a task past it are removed; 0: no cap. Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TASK_EVENTS_MAX_PER_TASK = 10_000;

  /** Plugin callback deliveries (webhook-ids, for de-duplication) are remembered this long. Hot. */
  @IsRetention(600, false)
  PLUGIN_DELIVERY_RETENTION = '24h';

  /** Agent-service statistics samples (/stats/timeseries) are kept this long. Hot. */
  @IsRetention(86_400, false)
  SERVICE_STATS_RETENTION = '7d';

  /** Ended agent sessions are kept this long (the *_today counts need a day; totals live in counters). Hot. */
  @IsRetention(86_400, false)
  AGENT_SESSION_RETENTION = '8d';

  /** How often the retention cleaner runs (one hub at a time); 0: never on its own. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RETENTION_INTERVAL_MS = 60_000;

  /** Rows one retention statement removes at most (each batch is its own short transaction). Hot. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000)
  RETENTION_BATCH_SIZE = 1000;
}

export class ConfigError extends Error {}

/**
 * The settings a class declares: every property with a validator (class-validator's metadata,
 * in declaration order, inherited ones included), plus any own field with a default. An
 * optional setting without a default is no own key of `new AppConfig()`, but its `@IsOptional()`
 * puts it in the metadata, so it is read without being listed anywhere else.
 */
export function settingKeys(settings: new () => object = AppConfig): string[] {
  const validated = getMetadataStorage()
    .getTargetValidationMetadatas(settings, '', true, false)
    .map((m) => m.propertyName);
  return [...new Set([...validated, ...Object.keys(new settings())])];
}

/** Every setting's name, in declaration order. */
export const CONFIG_KEYS: readonly string[] = settingKeys(AppConfig);

/**
 * `taskhub server --config <file>` lists here (comma separated) the settings whose value came
 * from the config file, so the hub can report them as source `file` (src/config/config-file.ts).
 */
export const CONFIG_FILE_KEYS_ENV = 'TASKHUB_CONFIG_FILE_KEYS';

/** Where a setting's boot value came from. */
export type BootSource = 'default' | 'env' | 'file';
const bootSources = new WeakMap<AppConfig, Readonly<Record<string, BootSource>>>();

/** The boot source of every setting of a config made by loadConfig (`default` for any other). */
export function bootSourceOf(config: AppConfig, key: string): BootSource {
  return bootSources.get(config)?.[key] ?? 'default';
}

/**
 * Reads and validates the settings from `env`. `settings` is AppConfig but for tests that
 * declare a subclass: the keys read come from the class itself (settingKeys).
 */
export function loadConfig<T extends AppConfig = AppConfig>(
  env: Record<string, string | undefined> = process.env,
  settings: new () => T = AppConfig as new () => T,
): T {
  const keys = settingKeys(settings);
  const raw: Record<string, string> = {};
  for (const key of keys) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const fromFile = new Set((env[CONFIG_FILE_KEYS_ENV] ?? '').split(',').filter(Boolean));
  const sources = Object.fromEntries(
    keys.map((key): [string, BootSource] => [key, key in raw ? (fromFile.has(key) ? 'file' : 'env') : 'default']),
  );
  const config = plainToInstance(settings, raw, { exposeDefaultValues: true });
  bootSources.set(config, sources);
  const errors = validateSync(config, { whitelist: false });
  if (errors.length > 0) {
    const lines = errors.map(
      (e) => `  ${e.property}=${JSON.stringify(e.value)}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return config;
}
