/** One health check of a service endpoint over HTTP, TCP or WebSocket. Never throws. */
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import type { HealthCheckSpec, HealthResult } from './agent-service.types.js';

export interface ProbeTarget {
  host: string;
  port: number;
  /** ws:// or wss:// base of an external service; host and port come from it. */
  endpoint?: string | null;
}

const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e6;
const round = (ms: number): number => Math.round(ms * 100) / 100;

function withPath(base: string, path: string): string {
  const url = new URL(base);
  if (path && path !== '/') url.pathname = path.startsWith('/') ? path : `/${path}`;
  return url.toString();
}

function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: t.host, port: t.port });
    const done = (error: string | null): void => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(timeoutMs, () => done(`no connection within ${timeoutMs} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (e) => done(e.message));
  });
}

async function probeHttp(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (e) {
    return e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e as Error).message;
  }
}

function probeWs(url: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
    let settled = false;
    const done = (error: string | null): void => {
      if (settled) return;
      settled = true;
      resolve(error);
      ws.terminate();
    };
    ws.once('open', () => {
      done(null);
    });
    ws.once('unexpected-response', (_req, res) => done(`HTTP ${res.statusCode} on upgrade`));
    ws.once('error', (e) => done(e.message));
  });
}

export async function probe(target: ProbeTarget, spec: HealthCheckSpec): Promise<HealthResult> {
  const timeoutMs = Math.max(1, spec.timeout * 1000);
  const started = process.hrtime.bigint();
  const base = target.endpoint ?? `ws://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  let error: string | null;
  switch (spec.type) {
    case 'http':
      error = await probeHttp(withPath(base.replace(/^ws/, 'http'), spec.path), timeoutMs);
      break;
    case 'ws':
      error = await probeWs(withPath(base, spec.path), timeoutMs);
      break;
    default:
      error = await probeTcp(target, timeoutMs);
  }
  return { status: error ? 'unhealthy' : 'healthy', response_time_ms: round(elapsed(started)), message: error };
}

/** Host and port of a ws(s):// or http(s):// endpoint. */
export function endpointAddress(endpoint: string): { host: string; port: number } {
  const url = new URL(endpoint);
  const secure = url.protocol === 'wss:' || url.protocol === 'https:';
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : secure ? 443 : 80 };
}
