import pg from 'pg';
import { apiClient } from '../support/api.js';
import { allRuns, ExecDevice, maxOverlap, waitFor } from '../support/exec-device.js';
import { HubProcess } from '../support/hub-process.js';
import type { TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

// A key's max_running across two hub processes sharing PostgreSQL and Redis, with devices on
// both: each hub's round takes the key's lock before it assigns, so together they never pass it.
// It needs Redis and the built app; without them it is skipped, saying why.
const skipReason = !process.env.REDIS_URL
  ? 'REDIS_URL is not set'
  : !HubProcess.canRun()
    ? 'dist/src/main.js is missing (run npm run build)'
    : null;
if (skipReason) process.stdout.write(`\n[concurrency-two-hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('concurrency keys across two hubs', () => {
  let a: HubProcess;
  let b: HubProcess;
  let db: pg.Client;
  const devices: ExecDevice[] = [];

  beforeAll(async () => {
    const databaseUrl = await createEmptyDatabase('concurrency_two_hubs');
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: process.env.REDIS_URL as string, AUTH_REQUIRED: 'false' };
    a = await new HubProcess(env).start();
    b = await new HubProcess(env).start();
    await db.query('TRUNCATE task_events, tasks, nodes CASCADE');
  }, 60_000);

  afterAll(async () => {
    devices.forEach((d) => d.close());
    await db?.end();
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    if (codes.some((c) => c !== 0))
      process.stdout.write(`\n[concurrency-two-hubs] hub output:\n${a.output.slice(-3000)}\n`);
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  const hub = (h: HubProcess) => apiClient({ url: h.url } as TestApp, undefined);

  it('100 short tasks of cust-1 (max_running 2), 5 devices on each hub: never more than 2 at once', async () => {
    expect((await hub(a).put('/api/v1/concurrency/cust-1', { max_running: 2 })).status).toBe(200);
    for (let i = 0; i < 10; i++) devices.push(await ExecDevice.connect((i % 2 ? b : a).url, '', `two-hub-dev-${i}`, 5));
    // submitted on both hubs, so both hubs' rounds are woken and race for the key
    const ids: string[] = [];
    for (const h of [a, b]) {
      const res = await hub(h).post<{ results: { task_id: string }[] }>('/api/v1/tasks/batch', {
        tasks: Array.from({ length: 50 }, (_, i) => ({ prompt: `two-${i}`, concurrency_key: 'cust-1' })),
      });
      expect(res.status).toBe(201);
      ids.push(...res.body.data.results.map((r) => r.task_id));
    }
    const done = async () =>
      (
        await db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = ANY ($1::uuid[]) AND status = 'completed'`, [
          ids,
        ])
      ).rows[0].n === 100;
    await waitFor('100 done', done, 30_000);
    const runs = allRuns(devices);
    expect(runs.filter((r) => ids.includes(r.task_id))).toHaveLength(100);
    expect(maxOverlap(runs, new Set(ids))).toBe(2);
    // both hubs' devices ran some
    expect(new Set(runs.map((r) => Number(r.device.split('-').pop()) % 2))).toEqual(new Set([0, 1]));
  }, 60_000);
});
