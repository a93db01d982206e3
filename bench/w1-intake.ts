// W1 (BENCHMARKS.md): task intake. POST /api/v1/tasks with 64 connections (autocannon), and
// the batch endpoint with 1,000 tasks a request; beside graphile-worker's addJob / addJobs
// rates measured on the same PostgreSQL in the same run. Rows are counted afterwards, so
// every reported number is backed by what the database holds.
import autocannon from 'autocannon';
import { makeWorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { freshDatabase, Hub, round } from './lib/services.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const TASK = { prompt: 'bench', priority: 'medium', tags: ['bench'], work_directory: '/bench' };

async function count(url: string, sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query(sql);
  await c.end();
  return Number((rows[0] as { n: string }).n);
}

async function hubIntake(): Promise<{ single: Record<string, number>; batch: Record<string, number> }> {
  const url = await freshDatabase('taskhub_bench_w1');
  const hub = await new Hub({ DATABASE_URL: url }).start();
  try {
    const single = await autocannon({
      url: `${hub.url}/api/v1/tasks`,
      method: 'POST',
      connections: 64,
      duration: DURATION,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(TASK),
    });
    const singleRows = await count(url, `SELECT count(*) AS n FROM tasks`);
    const ok = single.requests.total - single.non2xx;
    const batchBody = JSON.stringify({ tasks: Array.from({ length: 1000 }, () => TASK) });
    const batch = await autocannon({
      url: `${hub.url}/api/v1/tasks/batch`,
      method: 'POST',
      connections: 4,
      duration: DURATION,
      headers: { 'content-type': 'application/json' },
      body: batchBody,
    });
    const batchRows = (await count(url, `SELECT count(*) AS n FROM tasks`)) - singleRows;
    return {
      single: {
        rps: ok / DURATION,
        p50: single.latency.p50,
        p99: single.latency.p99,
        non2xx: single.non2xx,
        errors: single.errors,
        rows: singleRows,
        acknowledged: ok,
      },
      batch: {
        tasks_per_s: batchRows / DURATION,
        requests: batch.requests.total - batch.non2xx,
        p99: batch.latency.p99,
        non2xx: batch.non2xx,
        rows: batchRows,
        acknowledged_tasks: (batch.requests.total - batch.non2xx) * 1000,
      },
    };
  } finally {
    await hub.stop();
  }
}

/** addJob with `concurrency` callers in flight for DURATION seconds; addJobs of 1,000 likewise with 4. */
async function graphileIntake(): Promise<{ single16: number; single64: number; batch: number }> {
  const connectionString = await freshDatabase('taskhub_bench_gw');
  const utils = await makeWorkerUtils({ connectionString });
  await utils.migrate();
  const rate = async (concurrency: number, add: () => Promise<unknown>, per: number): Promise<number> => {
    const until = performance.now() + DURATION * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await add();
          done += per;
        }
      }),
    );
    return done / DURATION;
  };
  const payload = { prompt: 'bench' };
  const single16 = await rate(16, () => utils.addJob('noop', payload), 1);
  const single64 = await rate(64, () => utils.addJob('noop', payload), 1);
  const specs = Array.from({ length: 1000 }, () => ({ identifier: 'noop', payload }));
  const batch = await rate(4, () => utils.addJobs(specs), 1000);
  await utils.release();
  return { single16, single64, batch };
}

async function main(): Promise<void> {
  const gw = await graphileIntake();
  const ours = await hubIntake();
  console.log(
    JSON.stringify({
      workload: 'W1a-single-submit',
      connections: 64,
      seconds: DURATION,
      hub_rps: round(ours.single.rps, 0),
      p50_ms: ours.single.p50,
      p99_ms: ours.single.p99,
      non2xx: ours.single.non2xx,
      errors: ours.single.errors,
      acknowledged: ours.single.acknowledged,
      rows: ours.single.rows,
      // Requests cut off at the deadline may still commit, so rows can exceed acks; never fewer.
      no_ack_lost: ours.single.rows >= ours.single.acknowledged,
      anchor: 'graphile-worker 0.17.3 addJob',
      anchor_rps_16: round(gw.single16, 0),
      anchor_rps_64: round(gw.single64, 0),
      ratio_vs_64: round(ours.single.rps / gw.single64),
      target: 5000,
    }),
  );
  console.log(
    JSON.stringify({
      workload: 'W1b-batch-submit',
      connections: 4,
      tasks_per_request: 1000,
      hub_tasks_per_s: round(ours.batch.tasks_per_s, 0),
      p99_ms: ours.batch.p99,
      non2xx: ours.batch.non2xx,
      acknowledged_tasks: ours.batch.acknowledged_tasks,
      rows: ours.batch.rows,
      no_ack_lost: ours.batch.rows >= ours.batch.acknowledged_tasks,
      anchor: 'graphile-worker 0.17.3 addJobs (1,000 a call, 4 in flight)',
      anchor_jobs_per_s: round(gw.batch, 0),
      ratio: round(ours.batch.tasks_per_s / gw.batch),
      target: 50000,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
