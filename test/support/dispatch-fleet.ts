import { performance } from 'node:perf_hooks';
import type { DataSource } from 'typeorm';
import { type Api, apiClient } from './api.js';
import { TestDevice } from './device.js';
import type { TestApp } from './test-app.js';

// Helpers of the dispatch head-of-line suites (issue 23): tenants with keys, devices that hold
// or finish what they get and note when each task arrived, settling, percentiles, a seeded PRNG.

/** mulberry32: a small seeded PRNG, so a failing iteration is replayed from its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface TenantKeys {
  id: string;
  /** client + worker key: submits tasks, connects devices */
  key: string;
  api: Api;
  /** the tenant's admin (routing rules) */
  admin: Api;
}

/** Creates a tenant (no limits) with a client+worker key and an admin key. */
export async function makeTenant(t: TestApp, id: string): Promise<TenantKeys> {
  const global = apiClient(t, t.keys.admin);
  const made = await global.post('/api/v1/tenants', { id, name: `Tenant ${id}` });
  if (made.status !== 201) throw new Error(`tenant ${id}: ${made.status} ${JSON.stringify(made.body)}`);
  const key = async (roles: string[]): Promise<string> => {
    const res = await global.post<{ key: string }>('/api/v1/api-keys', {
      name: `${id}-${roles[0]}`,
      roles,
      tenant_id: id,
    });
    if (res.status !== 201) throw new Error(`key for ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data.key;
  };
  const worker = await key(['client', 'worker']);
  return { id, key: worker, api: apiClient(t, worker), admin: apiClient(t, await key(['admin'])) };
}

export interface DeviceSpec {
  id: string;
  capacity: number;
  tags: string[];
  capabilities: string[];
  /** Serves every tenant (a global key's device). */
  shared?: boolean;
}

/**
 * A registered device that notes when (performance.now()) each task reached it and acknowledges
 * it. It holds what it gets unless `finishAfterMs` is set: then it reports each task done that long after.
 */
export class FleetDevice {
  readonly arrivals = new Map<string, number>();
  private constructor(
    readonly spec: DeviceSpec,
    readonly device: TestDevice,
  ) {}

  static async connect(t: TestApp, key: string, spec: DeviceSpec, finishAfterMs?: number): Promise<FleetDevice> {
    const d = new FleetDevice(spec, new TestDevice(t.url, key));
    // Acknowledged as the SDK does (the task is running at once); an acknowledged emit also
    // leaves no Socket.IO ack timer behind in the hub.
    d.device.socket.on('new_task', (m: { task_id: string; attempt: number }, ack?: (a: unknown) => void) => {
      if (!d.arrivals.has(m.task_id)) d.arrivals.set(m.task_id, performance.now());
      if (typeof ack === 'function') ack({ received: true, task_id: m.task_id, attempt: m.attempt });
      if (finishAfterMs !== undefined)
        setTimeout(() => {
          if (d.device.socket.connected)
            d.device.socket.emit('task_result', { task_id: m.task_id, result: { success: true } });
        }, finishAfterMs);
    });
    await d.device.register(spec.id, {
      capacity: spec.capacity,
      tags: spec.tags,
      ...(spec.capabilities.length ? { capabilities: spec.capabilities } : {}),
      ...(spec.shared ? { shared: true } : {}),
    });
    return d;
  }

  /** Resolves when every one of `ids` has reached this device; rejects after `ms`. */
  async received(ids: string[], ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!ids.every((id) => this.arrivals.has(id))) {
      if (performance.now() > deadline) {
        const got = ids.filter((id) => this.arrivals.has(id)).length;
        throw new Error(`${this.spec.id}: ${got} of ${ids.length} task(s) arrived within ${Math.round(ms)} ms`);
      }
      await sleep(2);
    }
  }

  close(): void {
    this.device.close();
  }
}

/** How many tasks are held by nodes (dispatched or running). */
export async function heldCount(db: DataSource): Promise<number> {
  const [{ n }] = (await db.query(
    `SELECT count(*)::int AS n FROM tasks WHERE status IN ('dispatched', 'running')`,
  )) as { n: number }[];
  return n;
}

/** Waits until the held count has not changed for `quietMs` (at most `maxMs`); the final count. */
export async function settle(db: DataSource, quietMs = 1000, maxMs = 15_000): Promise<number> {
  const start = Date.now();
  let last = await heldCount(db);
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() - start < maxMs) {
    await sleep(50);
    const now = await heldCount(db);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

/** Submits one task and answers its id and when (performance.now()) its 201 came back. */
export async function submitOne(api: Api, body: Record<string, unknown>): Promise<{ id: string; at: number }> {
  const res = await api.post<{ task_id: string }>('/api/v1/tasks', body);
  const at = performance.now();
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.data.task_id, at };
}

/** POST /api/v1/tasks/batch (≤ 1,000 items, all created); the ids in item order and when the 201 came back. */
export async function submitBatch(api: Api, tasks: Record<string, unknown>[]): Promise<{ ids: string[]; at: number }> {
  const res = await api.post<{ created: number; results: { task_id?: string; error?: unknown }[] }>(
    '/api/v1/tasks/batch',
    { tasks },
  );
  const at = performance.now();
  if (res.status !== 201 || res.body.data.created !== tasks.length)
    throw new Error(`batch: ${res.status} ${JSON.stringify(res.body).slice(0, 2000)}`);
  return { ids: res.body.data.results.map((r) => r.task_id as string), at };
}
