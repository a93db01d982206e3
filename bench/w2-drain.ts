// W2 (BENCHMARKS.md): 10,000 tasks pre-loaded, 16 Socket.IO devices (capacity 4) in a separate
// process answering task_result at once; tasks/s from first dispatch to last completed row,
// beside graphile-worker's drain (10,000 no-op jobs, concurrency 16) from the same run.
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { graphileDrain } from './lib/graphile.js';
import { freshDatabase, Hub, postJson, round, sleep } from './lib/services.js';

const N = Number(process.env.BENCH_TASKS ?? 10_000);
const DEVICES = 16;
const CAPACITY = 4;

async function hubDrain(): Promise<{ seconds: number; perSecond: number; completed: number }> {
  const url = await freshDatabase('taskhub_bench_w2');
  const hub = await new Hub({ DATABASE_URL: url }).start();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    for (let i = 0; i < N; i += 1000) {
      const tasks = Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type: 'noop', data: { n: i + j } }));
      await postJson(`${hub.url}/api/v1/tasks/batch`, { tasks });
    }
    const fleet = fork(resolve('dist/bench/device-fleet.js'), [hub.url, String(DEVICES), String(CAPACITY), 'w2', '0'], { stdio: 'inherit' });
    try {
      for (;;) {
        const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'completed'`)).rows as { n: number }[];
        if (n >= N) break;
        await sleep(100);
      }
    } finally {
      fleet.send({ type: 'stop' });
    }
    const { rows } = await db.query(
      `SELECT count(*)::int AS completed, extract(epoch FROM max(completed_at) - min(dispatched_at))::float8 AS seconds
       FROM tasks WHERE status = 'completed'`,
    );
    const { completed, seconds } = rows[0] as { completed: number; seconds: number };
    return { seconds, perSecond: completed / seconds, completed };
  } finally {
    await db.end();
    await hub.stop();
  }
}

async function main(): Promise<void> {
  const gw = await graphileDrain(await freshDatabase('taskhub_bench_gw'), N, DEVICES);
  const ours = await hubDrain();
  console.log(
    JSON.stringify({
      workload: 'W2-drain',
      tasks: N,
      devices: `${DEVICES}x${CAPACITY}`,
      hub_tasks_per_s: round(ours.perSecond, 0),
      hub_seconds: round(ours.seconds),
      completed: ours.completed,
      anchor: 'graphile-worker 0.17.3 drain, concurrency 16',
      anchor_jobs_per_s: round(gw.perSecond, 0),
      ratio: round(ours.perSecond / gw.perSecond),
      target: '>= 1.0 x anchor',
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
