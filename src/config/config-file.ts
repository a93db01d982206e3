import { readFileSync } from 'node:fs';
import { CONFIG_KEYS, ConfigError } from './app-config.js';

interface CorsBlock {
  origin?: unknown;
  methods?: unknown;
  allowedHeaders?: unknown;
  credentials?: unknown;
}

interface RateLimitBlock {
  windowMs?: unknown;
  max?: unknown;
  message?: unknown;
  skipSuccessfulRequests?: unknown;
  skipFailedRequests?: unknown;
}

/**
 * The Codex Father config file (seed 000): what taskhub reads from it. The seed's security
 * section shows `cors` and `rateLimit` at the top level too; `server.*` wins where both are set.
 */
interface CodexConfigFile {
  server?: {
    port?: unknown;
    host?: unknown;
    enableWebSocket?: unknown;
    cors?: unknown;
    rateLimit?: RateLimitBlock;
    websocket?: { heartbeatInterval?: unknown; maxConnections?: unknown };
    security?: { helmet?: unknown; compression?: unknown };
  };
  cors?: unknown;
  rateLimit?: RateLimitBlock;
  runner?: { maxConcurrency?: unknown; defaultTimeout?: unknown };
  /** taskhub's own settings by name (`{"LLM_DEFAULT_MODEL": "m"}`), for those the seed has no key for. */
  settings?: Record<string, unknown>;
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
/** A list setting: a JSON array or a comma string, as a comma list. */
const list = (v: unknown): string | undefined => (Array.isArray(v) ? v.map(String).join(',') : str(v));

/** `cors` as the seed writes it: an object, or just the origin (string, list, `true` for any). */
function corsBlock(cors: unknown): CorsBlock {
  if (typeof cors === 'string' || Array.isArray(cors)) return { origin: cors };
  if (cors === true) return { origin: '*' };
  return typeof cors === 'object' && cors !== null ? (cors as CorsBlock) : {};
}

/**
 * Maps a config file to environment variables (the file is the lowest layer: the
 * environment and then command-line flags override it). Unknown keys are ignored;
 * a file that is not JSON stops the start with a message naming it. A `settings` block names
 * hub settings directly (any of CONFIG_KEYS, so a new setting needs no mapping here) and wins
 * over the seed's keys; an unknown name there stops the start.
 */
export function envFromConfigFile(path: string): Record<string, string> {
  let parsed: CodexConfigFile;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as CodexConfigFile;
  } catch (e) {
    throw new ConfigError(`Cannot read config file ${path}: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new ConfigError(`Config file ${path} must hold a JSON object`);
  const s = parsed.server ?? {};
  const cors = { ...corsBlock(parsed.cors), ...corsBlock(s.cors) };
  const rate: RateLimitBlock = { ...parsed.rateLimit, ...s.rateLimit };
  const timeoutMs = Number(parsed.runner?.defaultTimeout);
  const out: Record<string, string | undefined> = {
    PORT: str(s.port),
    HOST: str(s.host),
    CORS_ORIGIN: list(cors.origin),
    CORS_CREDENTIALS: str(cors.credentials),
    CORS_METHODS: list(cors.methods),
    CORS_ALLOWED_HEADERS: list(cors.allowedHeaders),
    WS_ENABLED: str(s.enableWebSocket),
    RATE_LIMIT_WINDOW_MS: str(rate.windowMs),
    RATE_LIMIT_MAX: str(rate.max),
    RATE_LIMIT_MESSAGE: str(rate.message),
    RATE_LIMIT_SKIP_SUCCESSFUL: str(rate.skipSuccessfulRequests),
    RATE_LIMIT_SKIP_FAILED: str(rate.skipFailedRequests),
    SECURITY_HEADERS: str(s.security?.helmet),
    COMPRESSION: str(s.security?.compression),
    WS_HEARTBEAT_INTERVAL_MS: str(s.websocket?.heartbeatInterval),
    WS_MAX_CONNECTIONS: str(s.websocket?.maxConnections),
    // The runner's parallelism: how many tasks the hub hands out at once.
    TASK_MAX_ACTIVE: str(parsed.runner?.maxConcurrency),
    // Codex timeouts are milliseconds; the hub's default is in seconds.
    TASK_DEFAULT_TIMEOUT_SECONDS:
      Number.isFinite(timeoutMs) && timeoutMs > 0 ? String(Math.ceil(timeoutMs / 1000)) : undefined,
  };
  Object.assign(out, namedSettings(path, parsed.settings));
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, string] => e[1] !== undefined));
}

const KNOWN = new Set(CONFIG_KEYS);

function namedSettings(path: string, block: unknown): Record<string, string | undefined> {
  if (block === undefined) return {};
  if (typeof block !== 'object' || block === null || Array.isArray(block))
    throw new ConfigError(`Config file ${path}: settings must be an object`);
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(block)) {
    if (!KNOWN.has(key)) throw new ConfigError(`Config file ${path}: unknown setting ${key}`);
    out[key] = typeof value === 'object' && value !== null ? JSON.stringify(value) : str(value);
  }
  return out;
}
