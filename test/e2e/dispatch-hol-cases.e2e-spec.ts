import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type Api, apiClient } from '../support/api.js';
import {
  FleetDevice,
  makeTenant,
  percentile,
  sleep,
  submitBatch,
  submitOne,
  type TenantKeys,
} from '../support/dispatch-fleet.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { suiteDatabaseUrl } from '../support/test-database.js';

/**
 * Issue 23, case by case: work no open node can take never stands in front of work one can.
 * Devices are real Socket.IO clients; pickup latency is from the submission's 201 (as the
 * client sees it) to the device receiving `new_task` (0 when the task arrived first).
 */
/** Pickups measured one by one for a percentile: p99 of 200 is the third slowest, not the slowest. */
const PICKUPS = 200;
/** The pickup bound at p99 (issue 23). */
const P99_MS = 50;

describe('dispatch: no head-of-line blocking (issue 23 cases)', () => {
  let t: TestApp;
  let client: Api;
  let a: TenantKeys;
  let b: TenantKeys;
  const fleet: FleetDevice[] = [];
  const rules: { api: Api; id: string }[] = [];
  const connect = async (
    key: string,
    spec: { id: string; capacity: number; tags?: string[]; capabilities?: string[] },
    finishAfterMs?: number,
  ): Promise<FleetDevice> => {
    const d = await FleetDevice.connect(t, key, { tags: [], capabilities: [], ...spec }, finishAfterMs);
    fleet.push(d);
    return d;
  };
  /** Pickup latencies (ms) of `ids` on `device`, from the matching 201 times. */
  const pickups = (device: FleetDevice, sent: { id: string; at: number }[]): number[] =>
    sent.map((s) => Math.max(0, (device.arrivals.get(s.id) as number) - s.at));
  /**
   * Submits tasks one by one (each awaited on `device`, 2 s at most) until `sent` holds PICKUPS;
   * past `min`, stops once more than 1% of PICKUPS missed P99_MS (the p99 is lost already).
   */
  const measure = async (
    device: FleetDevice,
    sent: { id: string; at: number }[],
    body: (i: number) => Record<string, unknown>,
    min: number,
  ): Promise<number[]> => {
    while (sent.length < PICKUPS) {
      const s = await submitOne(client, body(sent.length));
      sent.push(s);
      await device.received([s.id], 2000);
      const ms = pickups(device, sent);
      if (sent.length >= min && ms.filter((x) => x > P99_MS).length > PICKUPS / 100) break;
    }
    return pickups(device, sent);
  };
  const summary = (ms: number[]): string =>
    `n=${ms.length} p50=${percentile(ms, 50).toFixed(1)} ms p99=${percentile(ms, 99).toFixed(1)} ms max=${Math.max(...ms).toFixed(1)} ms`;
  const report = (line: string): void => {
    process.stdout.write(`\n[dispatch-hol] ${line}\n`);
  };

  beforeAll(async () => {
    t = await startTestApp({
      // Devices hold what they get: no assignment is released for want of an ack.
      DISPATCH_ACK_TIMEOUT_MS: '600000',
      // Event-driven rounds only: the slow safety tick must not be what delivers.
      DISPATCH_SAFETY_TICK_MS: '600000',
    });
    client = apiClient(t, t.keys.client);
    a = await makeTenant(t, 'hol-a');
    b = await makeTenant(t, 'hol-b');
  });
  afterEach(async () => {
    fleet.splice(0).forEach((d) => d.close());
    await sleep(50);
    await truncate(t.db, 'task_events, tasks, nodes');
    for (const r of rules.splice(0)) expect((await r.api.delete(`/api/v1/routing/rules/${r.id}`)).status).toBe(200);
  });
  afterAll(() => t.close());

  it('(a) 20 tasks no node can take (required_tags no-such-tag) do not hold back 5 ordinary ones', async () => {
    const device = await connect(t.keys.worker, { id: 'hol-a-idle', capacity: 4 }, 5);
    await submitBatch(
      client,
      Array.from({ length: 20 }, (_, i) => ({ prompt: `blocked ${i}`, required_tags: ['no-such-tag'] })),
    );
    const { ids, at } = await submitBatch(
      client,
      Array.from({ length: 5 }, (_, i) => ({ prompt: `ordinary ${i}` })),
    );
    await device.received(ids, 2000);
    report(`(a) 5 ordinary tasks behind 20 unplaceable: all in ${(performance.now() - at).toFixed(0)} ms`);
    const [{ n }] = (await t.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE status = 'pending' AND required_tags = '{no-such-tag}'`,
    )) as { n: number }[];
    expect(n).toBe(20);
  });

  it('(b) a gpu backlog of 500 does not keep the cpu device idle: its 5 tasks arrive at once', async () => {
    const gpu = await connect(t.keys.worker, { id: 'hol-gpu', capacity: 4, tags: ['gpu'] });
    const cpu = await connect(t.keys.worker, { id: 'hol-cpu', capacity: PICKUPS, tags: ['cpu'] });
    await submitBatch(
      client,
      Array.from({ length: 500 }, (_, i) => ({ prompt: `gpu ${i}`, required_tags: ['gpu'] })),
    );
    for (let i = 0; gpu.arrivals.size < 4 && i < 200; i++) await sleep(10);
    // The 5, one by one: all within 2 s.
    const started = performance.now();
    const sent: { id: string; at: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await submitOne(client, { prompt: `cpu ${i}`, required_tags: ['cpu'] });
      sent.push(s);
      await cpu.received([s.id], 2000 - (performance.now() - started));
    }
    // Then more, so the p99 is of PICKUPS pickups (of 5 it would be the slowest one).
    const ms = await measure(cpu, sent, (i) => ({ prompt: `cpu ${i}`, required_tags: ['cpu'] }), 5);
    report(`(b) cpu pickup behind 496 pending gpu tasks: first 5 ${summary(ms.slice(0, 5))}; all ${summary(ms)}`);
    expect(percentile(ms, 99)).toBeLessThanOrEqual(P99_MS);
    expect(gpu.arrivals.size).toBe(4);
  });

  it("(c) tenant A's 2,000-task backlog does not keep tenant B's idle devices waiting", async () => {
    // A's devices finish each task 10 ms after it arrives, so A's backlog drains at its own pace.
    const aDevices = [
      await connect(a.key, { id: 'hol-a-1', capacity: 2 }, 10),
      await connect(a.key, { id: 'hol-a-2', capacity: 2 }, 10),
    ];
    const bDevices = [
      await connect(b.key, { id: 'hol-b-1', capacity: 10 }),
      await connect(b.key, { id: 'hol-b-2', capacity: 10 }),
    ];
    for (let k = 0; k < 2; k++)
      await submitBatch(
        a.api,
        Array.from({ length: 1000 }, (_, i) => ({ prompt: `A ${k * 1000 + i}` })),
      );
    const { ids, at } = await submitBatch(
      b.api,
      Array.from({ length: 20 }, (_, i) => ({ prompt: `B ${i}` })),
    );
    const deadline = at + 2000;
    const arrived = (id: string): number | undefined =>
      bDevices.map((d) => d.arrivals.get(id)).find((x) => x !== undefined);
    while (!ids.every((id) => arrived(id) !== undefined)) {
      if (performance.now() > deadline)
        throw new Error(`tenant B: ${ids.filter((id) => arrived(id) !== undefined).length} of 20 arrived within 2 s`);
      await sleep(2);
    }
    const [{ pending, done }] = (await t.db.query(
      `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'completed')::int AS done
       FROM tasks WHERE tenant_id = 'hol-a'`,
    )) as { pending: number; done: number }[];
    const ms = ids.map((id) => Math.max(0, (arrived(id) as number) - at));
    report(`(c) tenant B's 20 behind A's 2,000: ${summary(ms)}; A then had ${done} done, ${pending} pending`);
    expect(pending).toBeGreaterThanOrEqual(1000); // well before A's backlog drains
    expect(aDevices.every((d) => d.arrivals.size > 0)).toBe(true); // and A was being served meanwhile
  });

  it('(d) 100,000 pending tasks no connected device can take: pickup of eligible ones stays p99 ≤ 50 ms', async () => {
    // Urgent and older than anything submitted later, so all of them sort first: a third asks
    // for a tag nobody has, a third is of a type the device does not take, a third is asked
    // for devices that never connected.
    await t.db.query(
      `INSERT INTO tasks (type, prompt, priority, required_tags, target_node_id, tenant_id, created_at, run_at)
       SELECT CASE g % 3 WHEN 0 THEN 'other' ELSE 't1' END, 'ineligible ' || g, 3,
              CASE g % 3 WHEN 1 THEN ARRAY['no-such-tag'] ELSE '{}'::text[] END,
              CASE g % 3 WHEN 2 THEN 'never-connected-' || (g % 50) END,
              'default', now() - interval '1 hour', now() - interval '1 hour'
       FROM generate_series(1, 100000) g`,
    );
    // Vacuumed and analyzed, as autovacuum would have long before a backlog this size built up
    // (and so not during the measurement). As the tables' owner: the hub's role may not.
    const owner = new pg.Client({ connectionString: await suiteDatabaseUrl() });
    await owner.connect();
    try {
      await owner.query('VACUUM ANALYZE tasks');
    } finally {
      await owner.end();
    }
    const device = await connect(t.keys.worker, { id: 'hol-d', capacity: PICKUPS, capabilities: ['t1'] });
    await sleep(200);
    // The 20 and more, one by one, so the p99 is of PICKUPS pickups.
    const ms = await measure(device, [], (i) => ({ type: 't1', prompt: `eligible ${i}` }), 20);
    report(
      `(d) pickup behind 100,000 ineligible pending tasks: first 20 ${summary(ms.slice(0, 20))}; all ${summary(ms)}`,
    );
    expect(percentile(ms, 99)).toBeLessThanOrEqual(P99_MS);
    const [{ n }] = (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'pending'`)) as {
      n: number;
    }[];
    expect(n).toBe(100000);
  }, 60_000);
  it('(e) a backlog a routing rule sends elsewhere (t3 → tag c, no such node) does not hold back other work', async () => {
    const admin = apiClient(t, t.keys.admin);
    const rule = await admin.post<{ id: string }>('/api/v1/routing/rules', {
      name: 't3 to c',
      priority: 10,
      conditions: [{ field: 'task.type', operator: 'equals', value: 't3' }],
      target_strategy: 'least_connections',
      target_tags: ['c'],
    });
    expect(rule.status).toBe(201);
    rules.push({ api: admin, id: rule.body.data.id });
    const device = await connect(t.keys.worker, { id: 'hol-e', capacity: 1 }, 5);
    await submitBatch(
      client,
      Array.from({ length: 200 }, (_, i) => ({ type: 't3', prompt: `routed ${i}`, priority: 'urgent' })),
    );
    const { ids, at } = await submitBatch(
      client,
      Array.from({ length: 5 }, (_, i) => ({ type: 't1', prompt: `plain ${i}` })),
    );
    await device.received(ids, 2000);
    report(`(e) 5 tasks behind 200 rule-routed ones: all in ${(performance.now() - at).toFixed(0)} ms`);
    const [{ n }] = (await t.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE status = 'pending' AND type = 't3'`,
    )) as { n: number }[];
    expect(n).toBe(200);
  });

  it("(f) tasks of another tenant asked for a device do not hold back that device's own tenant's tasks for it", async () => {
    // No untargeted work is pending: what hol-f may take is what is asked for it.
    const device = await connect(a.key, { id: 'hol-f', capacity: 1, tags: ['x'] }, 5);
    // Tenant B asks for A's device: never eligible (a node runs its own tenant's tasks only).
    await submitBatch(
      b.api,
      Array.from({ length: 50 }, (_, i) => ({ prompt: `foreign ${i}`, target_node_id: 'hol-f', priority: 'urgent' })),
    );
    const { ids, at } = await submitBatch(
      a.api,
      Array.from({ length: 3 }, (_, i) => ({ prompt: `own ${i}`, target_node_id: 'hol-f' })),
    );
    await device.received(ids, 2000);
    report(`(f) 3 targeted tasks behind 50 of another tenant's: all in ${(performance.now() - at).toFixed(0)} ms`);
    const [{ n }] = (await t.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE status = 'pending' AND tenant_id = 'hol-b'`,
    )) as { n: number }[];
    expect(n).toBe(50);
  });
});
