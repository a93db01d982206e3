// W3 (BENCHMARKS.md): idle device, 500 sequential POST /api/v1/tasks → the device receives
// new_task; p50/p99 on each hub mode, beside two anchors measured once in the same run:
// graphile-worker's addJob → task start (local PostgreSQL) and BullMQ's Queue.add → processor
// start (local Redis). Afterwards the hub's database itself (embedded mode: its own server) must
// hold every submitted task.
//
//   node dist/bench/w3-pickup.js [--mode=embedded|postgres|both]     (npm run bench:w3)
//   --mode / BENCH_MODE  embedded: the default `npm start` (no DATABASE_URL; its own PostgreSQL in
//                    a temp DATA_DIR, removed afterwards); postgres: a fresh database on the local
//                    PostgreSQL; both (default): embedded, then postgres
//   BENCH_SAMPLES    measured submissions per hub and anchor (default 500)
//   BENCH_WARMUP     unmeasured submissions before them, for the hub and each anchor alike
//                    (default 200: connections, caches and JIT warm, as in a running service)
//   BENCH_DB_SUFFIX  appended to every bench database name (and BullMQ's key prefix)
//   BENCH_ANCHORS=0  skip both anchors (profiling the hub alone)
//   BENCH_REDIS_URL  BullMQ's Redis (default redis://127.0.0.1:6379); unreachable → "skipped: …"
import { loadavg } from 'node:os';
import pg from 'pg';
import { bullmqPickup } from './lib/bullmq.js';
import { graphilePickup } from './lib/graphile.js';
import { measurePickup } from './lib/pickup.js';
import { sampleCost } from './lib/process-cost.js';
import {
  freshDatabase,
  type HubMode,
  isSkipped,
  type Measured,
  measureOrSkip,
  percentile,
  ratioTo,
  round,
  selectedModes,
  startModeHub,
  type Teardown,
} from './lib/services.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const MODES = selectedModes();
const TARGET = 'p50 ≤ 3 ms, p99 ≤ 10 ms'; // BENCHMARKS.md, verbatim

interface HubPickup {
  database: string;
  latencies: number[];
  /** Rows in the hub's `tasks` table: one per submission, warm-up included. */
  rows: number;
  /** CPU and transactions per pickup cycle (the bench process holds the client and the device). */
  cost: Record<string, number | null>;
  teardown: Teardown;
}

async function countTasks(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    return rows[0].n;
  } finally {
    await c.end();
  }
}

async function hubPickup(mode: HubMode): Promise<HubPickup> {
  const started = await startModeHub(mode, 'taskhub_bench_w3');
  let teardown: Teardown | undefined;
  try {
    // The cost of each pickup cycle (submit, delivery, ack, result), warm-up included.
    const db = new pg.Client({ connectionString: started.databaseUrl });
    await db.connect();
    const before = await sampleCost(db, started.hub.pid, started.dataDir);
    const benchBefore = process.cpuUsage();
    const latencies = await measurePickup(started.hub.url, { samples: SAMPLES, warmup: WARMUP });
    const bench = process.cpuUsage(benchBefore);
    const after = await sampleCost(db, started.hub.pid, started.dataDir);
    await db.end();
    const n = SAMPLES + WARMUP;
    const cost = {
      hub_cpu_us_per_pickup: round((after.hub - before.hub) / n, 0),
      db_cpu_us_per_pickup: after.db === null || before.db === null ? null : round((after.db - before.db) / n, 0),
      bench_cpu_us_per_pickup: round((bench.user + bench.system) / n, 0),
      xacts_per_pickup: round((after.xacts - before.xacts) / n, 2),
      hub_syscw_per_pickup: round((after.sys.w - before.sys.w) / n, 1),
    };
    const rows = await countTasks(started.databaseUrl);
    teardown = await started.close();
    return { database: started.database, latencies, rows, cost, teardown };
  } finally {
    if (!teardown) await started.close();
  }
}

interface Percentiles {
  p50: number;
  p99: number;
}

const percentiles = (sorted: number[]): Percentiles => ({ p50: percentile(sorted, 50), p99: percentile(sorted, 99) });

async function anchorPickup(run: () => Promise<number[]>): Promise<Percentiles & { samples: number }> {
  const sorted = (await run()).sort((a, b) => a - b);
  return { ...percentiles(sorted), samples: sorted.length };
}

interface Anchors {
  graphile: Measured<Percentiles & { samples: number }>;
  bullmq: Measured<Percentiles & { samples: number }>;
}

const anchorView = (name: string, m: Measured<Percentiles & { samples: number }>): unknown =>
  isSkipped(m) ? m : { anchor: name, samples: m.samples, p50_ms: round(m.p50), p99_ms: round(m.p99) };

function line(mode: HubMode, ours: HubPickup, a: Anchors, load: number[]): Record<string, unknown> {
  const { p50, p99 } = percentiles(ours.latencies);
  return {
    workload: 'W3-pickup',
    mode,
    database: ours.database,
    samples: ours.latencies.length,
    hub_p50_ms: round(p50),
    hub_p99_ms: round(p99),
    rows: ours.rows,
    rows_match_submitted: ours.rows === SAMPLES + WARMUP,
    ...ours.cost,
    graphile: anchorView('graphile-worker 0.17.3 addJob -> task start', a.graphile),
    bullmq: anchorView('BullMQ 6.7.0 Queue.add -> processor start (Worker concurrency 1)', a.bullmq),
    // Latency ratios: hub / anchor, so 1.0 is parity and lower is better.
    ratio_vs_graphile: { p50: ratioTo(p50, a.graphile, (g) => g.p50), p99: ratioTo(p99, a.graphile, (g) => g.p99) },
    ratio_vs_bullmq: { p50: ratioTo(p50, a.bullmq, (b) => b.p50), p99: ratioTo(p99, a.bullmq, (b) => b.p99) },
    target: TARGET,
    target_met: p50 <= 3 && p99 <= 10,
    note: 'hub latency includes the HTTP submit and the Socket.IO hop; the anchors run their workers in-process',
    ...ours.teardown,
    load_avg: load,
  };
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => round(l));
  // The hub's modes first, then the anchors once, shared by both lines. A stopped hub leaves
  // nothing running; the anchors leave the local server's autovacuum after their churn, and run
  // first they slowed the hub's pickup by ~1.5 ms (p50 5.3-6.0 against 4.0 ms alone, same build).
  const ours: [HubMode, HubPickup][] = [];
  for (const mode of MODES) ours.push([mode, await hubPickup(mode)]);
  const skip = process.env.BENCH_ANCHORS === '0';
  const anchors: Anchors = {
    graphile: skip
      ? 'skipped: BENCH_ANCHORS=0'
      : await measureOrSkip('graphile-worker', async () =>
          anchorPickup(async () => graphilePickup(await freshDatabase('taskhub_bench_gw'), SAMPLES, WARMUP)),
        ),
    bullmq: skip
      ? 'skipped: BENCH_ANCHORS=0'
      : await measureOrSkip('BullMQ', () => anchorPickup(() => bullmqPickup(SAMPLES, WARMUP))),
  };
  for (const [mode, pickup] of ours) console.log(JSON.stringify(line(mode, pickup, anchors, load)));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
