import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Api } from './api.js';

/** The echo agent script (test/fixtures/echo-agent.mjs). */
export const ECHO_AGENT = fileURLToPath(new URL('../fixtures/echo-agent.mjs', import.meta.url));

export interface ServiceView {
  service_id: string;
  name: string;
  status: string;
  endpoint: string | null;
  port: number | null;
  pid: number | null;
  tags: string[];
  config: Record<string, unknown>;
  stats: Record<string, number>;
  health: { status: string; last_check: string | null; response_time_ms: number | null };
  restart_count: number;
}

/** Registers the echo agent as a managed service on a free port (body fields override). */
export async function registerEcho(
  admin: Api,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<ServiceView> {
  const res = await admin.post<ServiceView>('/api/v1/services', {
    name,
    agent_factory_path: ECHO_AGENT,
    port: 0,
    health_check: { type: 'ws', interval: 1, timeout: 2 },
    ...extra,
    // Most suites check frames relayed as they are: wrapping (the seed's default) is asked for explicitly.
    config: { start_timeout: 10, proxy_metadata: false, ...(extra.config as Record<string, unknown> | undefined) },
  });
  if (res.status !== 201) throw new Error(`register ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as unknown as { service: ServiceView }).service;
}

/** Registers and starts; returns the running service. */
export async function startEcho(admin: Api, name: string, extra: Record<string, unknown> = {}): Promise<ServiceView> {
  const s = await registerEcho(admin, name, extra);
  const res = await admin.post<ServiceView>(`/api/v1/services/${s.service_id}/start`);
  if (res.status !== 200) throw new Error(`start ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/** Polls `fn` until it returns a truthy value (for state another process changes). */
export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false>,
  ms = 10_000,
  every = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Whether a process runs (a killed orphan stays a zombie until init reaps it: that counts as gone). */
export function alive(pid: number): boolean {
  try {
    return !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
