// W6 (BENCHMARKS.md): two hub processes + Redis on one PostgreSQL database; a device connected
// to hub A. Sequential submissions alternate between A (the W3 path, measured in the same run as
// the baseline) and B (cross-instance: B's dispatcher assigns, the Socket.IO Redis adapter
// delivers to A's socket). Then cancels: a task the device holds, cancelled on B, reaches the
// device on A. Afterwards the database must hold every submitted task, completed exactly once.
//
//   node dist/bench/w6-two-hubs.js                      (npm run bench:w6)
//   BENCH_SAMPLES    measured submissions per hub (default 500, after 20 unmeasured each) and
//                    cancels (a fifth of it)
//   BENCH_REDIS_URL  Redis for both hubs (default redis://127.0.0.1:6379); unreachable → a
//                    "skipped: …" line, exit 0
//   BENCH_DB_SUFFIX  appended to the bench database name
import { loadavg } from 'node:os';
import pg from 'pg';
import { Redis } from 'ioredis';
import { DeviceClient } from '../src/sdk/device-client.js';
import { freshDatabase, Hub, percentile, round } from './lib/services.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);
const CANCELS = Math.max(10, Math.floor(SAMPLES / 5));
const WARMUP = 20;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TARGET = 'within 2 ms of W3'; // BENCHMARKS.md, verbatim

interface Percentiles {
  p50: number;
  p99: number;
}

const percentiles = (values: number[]): Percentiles => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) };
};

async function redisReachable(): Promise<string | undefined> {
  const c = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.ping();
    return undefined;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    c.disconnect();
  }
}

async function post(url: string, body: unknown): Promise<{ task_id: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { task_id: string } }).data;
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => round(l));
  const unreachable = await redisReachable();
  if (unreachable) {
    console.log(JSON.stringify({ workload: 'W6-two-hubs', result: `skipped: Redis at ${REDIS_URL}: ${unreachable}` }));
    return;
  }
  const databaseUrl = await freshDatabase('taskhub_bench_w6');
  const env = (name: string): Record<string, string> => ({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    HUB_INSTANCE_NAME: `w6-${name}`,
  });
  const a = await new Hub(env('a')).start(); // runs the migrations first
  const b = await new Hub(env('b')).start();
  let arrived: ((taskId: string, at: number) => void) | undefined;
  let cancelled: ((taskId: string, at: number) => void) | undefined;
  const device = new DeviceClient({ url: a.url, id: 'w6-device', capacity: 4 }).onTask(async ({ task, signal }) => {
    arrived?.(task.task_id, performance.now());
    if ((task.data as { hold?: boolean } | undefined)?.hold)
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    return { ok: true };
  });
  device.on('cancelled', (taskId: string) => cancelled?.(taskId, performance.now()));
  try {
    await device.connect();
    const pickup = { a: [] as number[], b: [] as number[] };
    // Alternating A, B, A, B…: both paths share the machine's state at every moment.
    for (let i = 0; i < 2 * (SAMPLES + WARMUP); i++) {
      const hub = i % 2 === 0 ? a : b;
      const got = new Promise<number>((r) => (arrived = (_id, at) => r(at)));
      const t0 = performance.now();
      await post(`${hub.url}/api/v1/tasks`, { type: 'pickup', data: { i } });
      const at = await got;
      if (i >= 2 * WARMUP) (hub === a ? pickup.a : pickup.b).push(at - t0);
    }
    const cancelLatency: number[] = [];
    for (let i = 0; i < CANCELS; i++) {
      const got = new Promise<string>((r) => (arrived = (id) => r(id)));
      const { task_id } = await post(`${a.url}/api/v1/tasks`, { type: 'hold', data: { hold: true } });
      if ((await got) !== task_id) throw new Error('the device got another task than the one to cancel');
      const heard = new Promise<number>((r) => (cancelled = (id, at) => id === task_id && r(at)));
      const t0 = performance.now();
      await post(`${b.url}/api/v1/tasks/${task_id}/cancel`, {});
      cancelLatency.push((await heard) - t0);
    }
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const counts = (
      await db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM tasks GROUP BY status`)
    ).rows;
    const completions = (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM task_events WHERE type = 'completed' GROUP BY task_id HAVING count(*) > 1`,
      )
    ).rows.length;
    await db.end();
    const byStatus = Object.fromEntries(counts.map((c) => [c.status, c.n]));
    const same = percentiles(pickup.a);
    const cross = percentiles(pickup.b);
    const diff = { p50: round(cross.p50 - same.p50), p99: round(cross.p99 - same.p99) };
    console.log(
      JSON.stringify({
        workload: 'W6-two-hubs',
        samples_per_hub: SAMPLES,
        same_hub_w3_ms: same,
        cross_hub_ms: cross,
        cross_minus_same_ms: diff,
        cancel_on_b_to_device_on_a_ms: { ...percentiles(cancelLatency), samples: cancelLatency.length },
        tasks: byStatus,
        all_accounted: (byStatus.completed ?? 0) === 2 * (SAMPLES + WARMUP) && (byStatus.cancelled ?? 0) === CANCELS,
        completed_twice: completions,
        target: TARGET,
        target_met: diff.p50 <= 2 && diff.p99 <= 2,
        note: 'both paths include the HTTP submit and the Socket.IO hop; B adds its dispatch and the Redis adapter',
        load_avg: load,
      }),
    );
  } finally {
    device.close();
    await b.stop();
    await a.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
