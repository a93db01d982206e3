// W2 (BENCHMARKS.md): 10,000 tasks pre-loaded, 16 Socket.IO devices (capacity 4) in a separate
// process answering task_result at once; tasks/s from first dispatch to last completed row, on
// each hub mode; beside two anchors measured once in the same run: graphile-worker's drain
// (10,000 no-op jobs, concurrency 16, local PostgreSQL) and BullMQ's (same, local Redis).
// The completed rows are read from the hub's database itself (embedded mode: its own server).
//
//   node dist/bench/w2-drain.js [--mode=embedded|postgres|both]     (npm run bench:w2)
//   --mode / BENCH_MODE  embedded: the default `npm start` (no DATABASE_URL; its own PostgreSQL in
//                    a temp DATA_DIR, removed afterwards); postgres: a fresh database on the local
//                    PostgreSQL; both (default): embedded, then postgres
//   BENCH_TASKS      tasks (and anchor jobs) to drain (default 10000)
//   BENCH_DB_SUFFIX  appended to every bench database name (and BullMQ's key prefix)
//   BENCH_REDIS_URL  BullMQ's Redis (default redis://127.0.0.1:6379); unreachable → "skipped: …"
//   BENCH_ANCHORS=0  skip both anchors (quick iterations on the hub's own per-task costs)
// Each line also gives the drain's cost per task: hub CPU (/proc), the embedded server's CPU,
// and from pg_stat_database the transactions (≈ statements: each runs on its own) and rows written.
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import pg from 'pg';
import { bullmqDrain, type BullmqDrain } from './lib/bullmq.js';
import { graphileDrain } from './lib/graphile.js';
import { type CostSample, cpuUs, sampleCost } from './lib/process-cost.js';
import {
  freshDatabase,
  type HubMode,
  isSkipped,
  type Measured,
  measureOrSkip,
  postJson,
  ratioTo,
  round,
  selectedModes,
  sleep,
  startModeHub,
  type Teardown,
} from './lib/services.js';

const N = Number(process.env.BENCH_TASKS ?? 10_000);
const MODES = selectedModes();
const DEVICES = 16;
const CAPACITY = 4;
const TARGET = '≥ 1.5 × graphile-worker drain in the same run; moonshot ≥ 0.5 × BullMQ'; // BENCHMARKS.md, verbatim

interface HubDrain {
  database: string;
  seconds: number;
  perSecond: number;
  completed: number;
  /** Per completed task, over the drain (contention-robust: counts, and CPU rather than wall time). */
  cost: DrainCost;
  teardown: Teardown;
}

interface DrainCost {
  hub_cpu_us_per_task: number;
  /** The hub's write and read syscalls (write/writev/send…: /proc/<pid>/io syscw, syscr). */
  hub_syscw_per_task: number;
  hub_syscr_per_task: number;
  /** The device fleet's process (its whole life: connecting is a small part). */
  fleet_cpu_us_per_task: number;
  /** The embedded server's processes (postmaster and backends); null on the shared server. */
  db_cpu_us_per_task: number | null;
  xacts_per_task: number;
  rows_inserted_per_task: number;
  rows_updated_per_task: number;
}

function costPerTask(a: CostSample, b: CostSample, fleetCpu: number, n: number): DrainCost {
  return {
    hub_cpu_us_per_task: round((b.hub - a.hub) / n, 0),
    hub_syscw_per_task: round((b.sys.w - a.sys.w) / n, 2),
    hub_syscr_per_task: round((b.sys.r - a.sys.r) / n, 2),
    fleet_cpu_us_per_task: round(fleetCpu / n, 0),
    db_cpu_us_per_task: a.db === null || b.db === null ? null : round((b.db - a.db) / n, 0),
    xacts_per_task: round((b.xacts - a.xacts) / n, 3),
    rows_inserted_per_task: round((b.inserted - a.inserted) / n, 3),
    rows_updated_per_task: round((b.updated - a.updated) / n, 3),
  };
}

async function preload(hubUrl: string): Promise<void> {
  for (let i = 0; i < N; i += 1000) {
    const tasks = Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type: 'noop', data: { n: i + j } }));
    await postJson(`${hubUrl}/api/v1/tasks/batch`, { tasks });
  }
}

/** Starts the device fleet and waits until the database holds N completed rows; answers the fleet's CPU (µs). */
async function drain(hubUrl: string, db: pg.Client): Promise<number> {
  const fleet = fork(resolve('dist/bench/device-fleet.js'), [hubUrl, String(DEVICES), String(CAPACITY), 'w2', '0'], {
    stdio: 'inherit',
  });
  try {
    for (;;) {
      const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'completed'`)).rows as {
        n: number;
      }[];
      if (n >= N) return cpuUs(fleet.pid);
      if (fleet.exitCode !== null)
        throw new Error(`device fleet exited (code ${fleet.exitCode}) with ${n} of ${N} tasks completed`);
      await sleep(100);
    }
  } finally {
    fleet.send({ type: 'stop' });
  }
}

async function hubDrain(mode: HubMode): Promise<HubDrain> {
  const started = await startModeHub(mode, 'taskhub_bench_w2');
  const db = new pg.Client({ connectionString: started.databaseUrl });
  let teardown: Teardown | undefined;
  try {
    await db.connect();
    await preload(started.hub.url);
    // pg_stat_database lags by up to PGSTAT's flush interval: settle before and after sampling.
    await sleep(1500);
    const before = await sampleCost(db, started.hub.pid, started.dataDir);
    const fleetCpu = await drain(started.hub.url, db);
    await sleep(1500);
    const cost = costPerTask(before, await sampleCost(db, started.hub.pid, started.dataDir), fleetCpu, N);
    const { rows } = await db.query(
      `SELECT count(*)::int AS completed, extract(epoch FROM max(completed_at) - min(dispatched_at))::float8 AS seconds
       FROM tasks WHERE status = 'completed'`,
    );
    const { completed, seconds } = rows[0] as { completed: number; seconds: number };
    await db.end();
    teardown = await started.close();
    return { database: started.database, seconds, perSecond: completed / seconds, completed, cost, teardown };
  } finally {
    if (!teardown) {
      await db.end().catch(() => undefined);
      await started.close();
    }
  }
}

interface Anchors {
  graphile: Measured<{ seconds: number; perSecond: number }>;
  bullmq: Measured<BullmqDrain>;
}

function line(mode: HubMode, ours: HubDrain, a: Anchors, load: number[]): Record<string, unknown> {
  const vsGraphile = ratioTo(ours.perSecond, a.graphile, (g) => g.perSecond);
  const vsBullmq = ratioTo(ours.perSecond, a.bullmq, (b) => b.jobs_per_s);
  return {
    workload: 'W2-drain',
    mode,
    database: ours.database,
    tasks: N,
    devices: `${DEVICES}x${CAPACITY}`,
    hub_tasks_per_s: round(ours.perSecond, 0),
    hub_seconds: round(ours.seconds),
    completed: ours.completed,
    completed_match: ours.completed === N,
    ...ours.cost,
    graphile: isSkipped(a.graphile)
      ? a.graphile
      : {
          anchor: `graphile-worker 0.17.3 drain, concurrency ${DEVICES}`,
          jobs: N,
          jobs_per_s: round(a.graphile.perSecond, 0),
          seconds: round(a.graphile.seconds),
        },
    bullmq: isSkipped(a.bullmq)
      ? a.bullmq
      : {
          anchor: a.bullmq.anchor,
          jobs: a.bullmq.jobs,
          completed: a.bullmq.completed,
          jobs_per_s: round(a.bullmq.jobs_per_s, 0),
          seconds: round(a.bullmq.seconds),
        },
    ratio_vs_graphile: vsGraphile,
    ratio_vs_bullmq: vsBullmq,
    target: TARGET,
    target_met: typeof vsGraphile === 'number' ? vsGraphile >= 1.5 : null,
    moonshot_met: typeof vsBullmq === 'number' ? vsBullmq >= 0.5 : null,
    ...ours.teardown,
    load_avg: load,
  };
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => round(l));
  // The hub's modes first, then the anchors once, shared by both lines: a stopped hub leaves
  // nothing running, while the anchors' churn leaves the local server vacuuming (W3 measured the
  // hub ~1.5 ms slower after them).
  const measured: [HubMode, Awaited<ReturnType<typeof hubDrain>>][] = [];
  for (const mode of MODES) measured.push([mode, await hubDrain(mode)]);
  const skip = process.env.BENCH_ANCHORS === '0';
  const skipped = async <T>(name: string, fn: () => Promise<T>): Promise<Measured<T>> =>
    skip ? 'skipped: BENCH_ANCHORS=0' : measureOrSkip(name, fn);
  const anchors: Anchors = {
    graphile: await skipped('graphile-worker', async () =>
      graphileDrain(await freshDatabase('taskhub_bench_gw'), N, DEVICES),
    ),
    bullmq: await skipped('BullMQ', () => bullmqDrain(N, DEVICES)),
  };
  for (const [mode, ours] of measured) console.log(JSON.stringify(line(mode, ours, anchors, load)));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
