import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type Api, apiClient } from '../support/api.js';
import { FleetDevice, sleep, submitBatch } from '../support/dispatch-fleet.js';
import { HubProcess } from '../support/hub-process.js';
import type { TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

// Issue 29 item 2 across two hub processes sharing PostgreSQL and Redis: shared devices on both
// hubs serve two tenants, whose tasks are submitted on one; each hub's rounds give the tenants
// turns (docs/flow-control.md, "Fairness", "Per hub"). Needs Redis and the built app.
const skipReason = !process.env.REDIS_URL
  ? 'REDIS_URL is not set'
  : !HubProcess.canRun()
    ? 'dist/src/main.js is missing (run npm run build)'
    : null;
if (skipReason) process.stdout.write(`\n[fairness-two-hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('fairness on shared devices across two hubs', () => {
  let one: HubProcess;
  let two: HubProcess;
  let db: pg.Client;
  let admin: string;
  const keys: Record<string, string> = {};
  const fleet: FleetDevice[] = [];
  const api = (h: HubProcess, key: string): Api => apiClient({ url: h.url } as TestApp, key);

  beforeAll(async () => {
    const databaseUrl = await createEmptyDatabase('fairness_two_hubs');
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: process.env.REDIS_URL as string, AUTH_REQUIRED: 'true' };
    one = await new HubProcess(env).start();
    const found = /first admin API key[^:]*: ([A-Za-z0-9_-]+)/.exec(one.output);
    if (!found) throw new Error(`no admin key printed:\n${one.output.slice(-2000)}`);
    admin = found[1];
    two = await new HubProcess(env).start();
    for (const tenant of ['pool-a', 'pool-b']) {
      expect((await api(one, admin).post('/api/v1/tenants', { id: tenant, name: tenant })).status).toBe(201);
      const res = await api(one, admin).post<{ key: string }>('/api/v1/api-keys', {
        name: `${tenant}-client`,
        roles: ['client'],
        tenant_id: tenant,
      });
      expect(res.status).toBe(201);
      keys[tenant] = res.body.data.key;
    }
  }, 90_000);

  afterAll(async () => {
    fleet.forEach((d) => d.close());
    await db?.end();
    const codes = await Promise.all([one?.stop(), two?.stop()]);
    if (codes.some((c) => c !== 0))
      process.stdout.write(`\n[fairness-two-hubs] hub output:\n${one.output.slice(-3000)}\n`);
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  it("B's tasks, submitted behind A's backlog, take turns with it on shared devices of both hubs; all complete", async () => {
    for (const [i, h] of [one, two, two].entries())
      fleet.push(
        await FleetDevice.connect(
          { url: h.url } as TestApp,
          admin,
          { id: `shared-${i}`, capacity: 1, tags: [], capabilities: [], shared: true },
          10,
        ),
      );
    const work = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'job', prompt: `p${i}`, max_retries: 0 }));
    const ofA = await submitBatch(api(one, keys['pool-a']), work(400));
    const arrivals = () =>
      fleet.flatMap((d) => [...d.arrivals].map(([id, at]) => ({ id, at }))).sort((x, y) => x.at - y.at);
    while (arrivals().length < 30) await sleep(20);
    const submitted = performance.now();
    const ofB = await submitBatch(api(one, keys['pool-b']), work(12));
    const all = [...ofA.ids, ...ofB.ids];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await db.query(
        `SELECT count(*)::int AS n FROM tasks WHERE id = ANY ($1::uuid[]) AND status = 'completed'`,
        [all],
      );
      if (rows[0].n === all.length) break;
      if (Date.now() > deadline) throw new Error(`${rows[0].n} of ${all.length} completed`);
      await sleep(100);
    }
    const after = arrivals().filter((x) => x.at >= submitted);
    const lastOfB = Math.max(...ofB.ids.map((id) => after.findIndex((x) => x.id === id)));
    // In turns, B's 12 are out within ~24 arrivals (A still had ~370 to go).
    expect(lastOfB).toBeGreaterThanOrEqual(0);
    expect(lastOfB).toBeLessThan(40);
    // Both hubs' shared devices ran tasks of both tenants.
    const { rows } = await db.query(
      `SELECT DISTINCT node_id, tenant_id FROM tasks WHERE id = ANY ($1::uuid[]) ORDER BY 1, 2`,
      [all],
    );
    const pairs = new Set(rows.map((r: { node_id: string; tenant_id: string }) => `${r.node_id}/${r.tenant_id}`));
    expect(pairs.has('shared-0/pool-a') && pairs.has('shared-1/pool-a')).toBe(true);
    expect([...pairs].filter((p) => p.endsWith('/pool-b')).length).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
