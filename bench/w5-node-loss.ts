// W5 (BENCHMARKS.md): 100 devices on 2 s tasks in two client processes; SIGKILL the process
// holding a third of them. Reports time to re-dispatch, lost tasks, duplicate completions.
// The hub runs on a fresh database taskhub_bench_w5 + BENCH_DB_SUFFIX on the local PostgreSQL.
import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { freshDatabase, Hub, postJson, sleep } from './lib/services.js';

const GRACE_MS = Number(process.env.BENCH_GRACE_MS ?? 15_000);
const TASK_MS = 2000;

function fleet(url: string, count: number, prefix: string): Promise<ChildProcess> {
  const child = fork(resolve('dist/bench/device-fleet.js'), [url, String(count), '1', prefix, String(TASK_MS)], {
    stdio: 'inherit',
  });
  return new Promise((ok, fail) => {
    child.on('message', (m: { type: string }) => m.type === 'ready' && ok(child));
    child.once('exit', (code) => fail(new Error(`fleet ${prefix} exited ${code}`)));
  });
}

async function main(): Promise<void> {
  const url = await freshDatabase('taskhub_bench_w5');
  const hub = await new Hub({ DATABASE_URL: url, NODE_RECONNECT_GRACE_MS: String(GRACE_MS) }).start();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const doomed = await fleet(hub.url, 34, 'a');
  const survivors = await fleet(hub.url, 66, 'b');
  try {
    await postJson(`${hub.url}/api/v1/tasks/batch`, {
      tasks: Array.from({ length: 100 }, (_, i) => ({ type: 'work', data: { i }, max_retries: 3 })),
    });
    for (;;) {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status IN ('dispatched', 'running')`);
      if ((rows[0] as { n: number }).n === 100) break;
      await sleep(20);
    }
    const held = (await db.query(`SELECT id FROM tasks WHERE node_id LIKE 'a-%'`)).rows.map(
      (r: { id: string }) => r.id,
    );
    const killedAt = Date.now();
    doomed.kill('SIGKILL');
    for (;;) {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'completed'`);
      if ((rows[0] as { n: number }).n === 100 || Date.now() - killedAt > GRACE_MS + 60_000) break;
      await sleep(100);
    }
    const redispatch = await db.query(
      `SELECT max(extract(epoch FROM dispatched_at) * 1000)::float8 AS last FROM tasks WHERE id = ANY($1::uuid[]) AND attempt >= 2`,
      [held],
    );
    const [{ completed, lost }] = (
      await db.query(
        `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status <> 'completed')::int AS lost FROM tasks`,
      )
    ).rows as { completed: number; lost: number }[];
    const [{ duplicates }] = (
      await db.query(
        `SELECT count(*)::int AS duplicates FROM (SELECT task_id FROM task_events WHERE type = 'completed' GROUP BY task_id HAVING count(*) > 1) d`,
      )
    ).rows as { duplicates: number }[];
    const last = (redispatch.rows[0] as { last: number | null }).last;
    console.log(
      JSON.stringify({
        workload: 'W5-node-loss',
        devices: 100,
        killed_devices: 34,
        tasks_held_by_killed: held.length,
        grace_ms: GRACE_MS,
        redispatch_after_kill_ms: last === null ? null : Math.round(last - killedAt),
        completed,
        lost,
        duplicate_completions: duplicates,
        target: `lost 0, duplicates 0, re-dispatch <= grace + 2000 ms (${GRACE_MS + 2000})`,
        met: lost === 0 && duplicates === 0 && last !== null && last - killedAt <= GRACE_MS + 2000,
      }),
    );
  } finally {
    survivors.send({ type: 'stop' });
    await db.end();
    await hub.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
