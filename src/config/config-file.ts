import { readFileSync } from 'node:fs';
import { ConfigError } from './app-config.js';

/** The Codex Father config file (seed 000): what taskhub reads from it. */
interface CodexConfigFile {
  server?: {
    port?: unknown;
    host?: unknown;
    enableWebSocket?: unknown;
    cors?: unknown;
    rateLimit?: { windowMs?: unknown; max?: unknown };
    websocket?: { heartbeatInterval?: unknown; maxConnections?: unknown };
  };
  runner?: { maxConcurrency?: unknown; defaultTimeout?: unknown };
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

/**
 * Maps a config file to environment variables (the file is the lowest layer: the
 * environment and then command-line flags override it). Unknown keys are ignored;
 * a file that is not JSON stops the start with a message naming it.
 */
export function envFromConfigFile(path: string): Record<string, string> {
  let parsed: CodexConfigFile;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as CodexConfigFile;
  } catch (e) {
    throw new ConfigError(`Cannot read config file ${path}: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new ConfigError(`Config file ${path} must hold a JSON object`);
  const s = parsed.server ?? {};
  const cors = s.cors as { origin?: unknown } | string | string[] | boolean | undefined;
  const origin =
    typeof cors === 'string' ? cors : Array.isArray(cors) ? cors.join(',') : cors === true ? '*' : typeof cors === 'object' && cors ? str(Array.isArray(cors.origin) ? cors.origin.join(',') : cors.origin) : undefined;
  const timeoutMs = Number(parsed.runner?.defaultTimeout);
  const out: Record<string, string | undefined> = {
    PORT: str(s.port),
    HOST: str(s.host),
    CORS_ORIGIN: origin,
    WS_ENABLED: str(s.enableWebSocket),
    RATE_LIMIT_WINDOW_MS: str(s.rateLimit?.windowMs),
    RATE_LIMIT_MAX: str(s.rateLimit?.max),
    WS_HEARTBEAT_INTERVAL_MS: str(s.websocket?.heartbeatInterval),
    WS_MAX_CONNECTIONS: str(s.websocket?.maxConnections),
    // Codex timeouts are milliseconds; the hub's default is in seconds.
    TASK_DEFAULT_TIMEOUT_SECONDS: Number.isFinite(timeoutMs) && timeoutMs > 0 ? String(Math.ceil(timeoutMs / 1000)) : undefined,
  };
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, string] => e[1] !== undefined));
}
