// W2 with retention (issue 25): the W2 drain (tasks pre-loaded, 16 Socket.IO devices of
// capacity 4 answering at once) run with retention off, and with the cleaner removing finished
// tasks while the drain runs (TASK_RETENTION=1s, no grace, a pass every 500 ms), alternating
// off/on/off/on so both see the same machine. Reports tasks/s of each, the cost of retention,
// the rows it removed during the drain, the server's deadlock count, and whether nothing was lost
// (every task completed exactly once) and the task counters still equal count(*).
//
// Completions are read from the finish counters (task_finish_minutes and its deltas): they keep
// counting what retention has already removed.
//
//   node dist/bench/w2-retention.js [--mode=postgres|embedded]     (npm run bench:w2-retention)
//   BENCH_TASKS      tasks per drain (default 20000)
//   BENCH_ROUNDS     off/on pairs (default 2)
//   BENCH_DB_SUFFIX  appended to the bench database name
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import pg from 'pg';
import { type HubMode, postJson, round, selectedModes, sleep, startModeHub } from './lib/services.js';

const N = Number(process.env.BENCH_TASKS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DEVICES = 16;
const CAPACITY = 4;
const TARGET = 'retention running during W2 costs ≤ 10 % of its throughput; nothing lost; no deadlocks';

const RETENTION_ON = { TASK_RETENTION: '1s', TASK_RETENTION_GRACE: '0', RETENTION_INTERVAL_MS: '500' };
const RETENTION_OFF = { RETENTION_INTERVAL_MS: '0' };

interface Drain {
  retention: boolean;
  perSecond: number;
  seconds: number;
  completedOnce: boolean;
  removedDuringDrain: number;
  deadlocks: number;
  leftUnfinished: number;
  counterMismatches: number;
}

const one = async (db: pg.Client, sql: string): Promise<number> =>
  Number(((await db.query(sql)).rows[0] as { n: string | number | null }).n ?? 0);

const COMPLETED = `SELECT COALESCE(sum(n), 0) AS n FROM (
  SELECT completed AS n FROM task_finish_minutes UNION ALL
  SELECT n FROM task_finish_deltas WHERE status = 'completed') f`;

const MISMATCHES = `WITH counted AS (
    SELECT tenant_id, status, priority, sum(n) AS n FROM (
      SELECT tenant_id, status, priority, n FROM task_counts UNION ALL
      SELECT tenant_id, status, priority, n FROM task_count_deltas) c GROUP BY 1, 2, 3),
  actual AS (SELECT tenant_id, status, priority, count(*) AS n FROM tasks GROUP BY 1, 2, 3)
  SELECT count(*) AS n FROM counted c FULL JOIN actual a USING (tenant_id, status, priority)
   WHERE COALESCE(c.n, 0) <> COALESCE(a.n, 0)`;

async function drain(mode: HubMode, retention: boolean): Promise<Drain> {
  const started = await startModeHub(mode, 'taskhub_bench_w2_retention', {
    env: retention ? RETENTION_ON : RETENTION_OFF,
  });
  const db = new pg.Client({ connectionString: started.databaseUrl });
  try {
    await db.connect();
    for (let i = 0; i < N; i += 1000) {
      const tasks = Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type: 'noop', data: { n: i + j } }));
      await postJson(`${started.hub.url}/api/v1/tasks/batch`, { tasks });
    }
    const deadlocksBefore = await one(
      db,
      `SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()`,
    );
    const fleet = fork(
      resolve('dist/bench/device-fleet.js'),
      [started.hub.url, String(DEVICES), String(CAPACITY), 'w2', '0'],
      {
        stdio: 'inherit',
      },
    );
    const t0 = Date.now();
    let done = 0;
    try {
      for (;;) {
        done = await one(db, COMPLETED);
        if (done >= N) break;
        if (fleet.exitCode !== null) throw new Error(`device fleet exited with ${done} of ${N} completed`);
        await sleep(50);
      }
    } finally {
      fleet.send({ type: 'stop' });
    }
    const seconds = (Date.now() - t0) / 1000;
    await sleep(1500); // a last fold; a late duplicate completion would show here
    const completed = await one(db, COMPLETED);
    const present = await one(db, `SELECT count(*) AS n FROM tasks`);
    return {
      retention,
      perSecond: N / seconds,
      seconds,
      completedOnce: completed === N,
      removedDuringDrain: N - present,
      deadlocks:
        (await one(db, `SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()`)) -
        deadlocksBefore,
      leftUnfinished: await one(db, `SELECT count(*) AS n FROM tasks WHERE status <> 'completed'`),
      counterMismatches: await one(db, MISMATCHES),
    };
  } finally {
    await db.end().catch(() => undefined);
    await started.close();
  }
}

async function main(): Promise<void> {
  const modes: HubMode[] = selectedModes();
  const mode: HubMode = modes.includes('postgres') ? 'postgres' : modes[0];
  const runs: Drain[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    runs.push(await drain(mode, false));
    runs.push(await drain(mode, true));
  }
  const mean = (on: boolean): number => {
    const xs = runs.filter((d) => d.retention === on).map((d) => d.perSecond);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const off = mean(false);
  const on = mean(true);
  const cost = 1 - on / off;
  const summary = {
    workload: 'W2-retention',
    mode,
    tasks: N,
    devices: `${DEVICES}x${CAPACITY}`,
    runs: runs.map((d) => ({
      retention: d.retention ? 'on (1s, no grace, pass every 500 ms)' : 'off',
      tasks_per_s: round(d.perSecond, 0),
      seconds: round(d.seconds),
      removed_during_drain: d.removedDuringDrain,
      completed_exactly_once: d.completedOnce,
      left_unfinished: d.leftUnfinished,
      deadlocks: d.deadlocks,
      counter_mismatches: d.counterMismatches,
    })),
    tasks_per_s_off: round(off, 0),
    tasks_per_s_on: round(on, 0),
    retention_cost: `${round(cost * 100, 1)} %`,
    target: TARGET,
    target_met:
      cost <= 0.1 &&
      runs.every((d) => d.completedOnce && d.deadlocks === 0 && d.leftUnfinished === 0 && d.counterMismatches === 0),
    load_avg_1m: round(loadavg()[0]),
  };
  console.log(JSON.stringify(summary, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
