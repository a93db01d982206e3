import { performance } from 'node:perf_hooks';
import { apiClient } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { FleetDevice, makeTenant, sleep, submitBatch, type TenantKeys } from '../support/dispatch-fleet.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * Issue 29 item 2: fairness between tenants on shared capacity (docs/flow-control.md,
 * "Fairness"). Devices registered with a global key and `shared: true` serve every tenant; the
 * dispatcher gives their slots to the tenants in turns, by `limits.weight`, instead of the
 * oldest task first; global pull workers take the tenants in turns the same way.
 */
describe('fairness between tenants on shared capacity (issue 29)', () => {
  let t: TestApp;
  let a: TenantKeys;
  let b: TenantKeys;
  const fleet: FleetDevice[] = [];

  const work = (n: number, type = 'job'): Record<string, unknown>[] =>
    Array.from({ length: n }, (_, i) => ({ type, prompt: `${type} ${i}`, max_retries: 0 }));

  /** Tasks by id → tenant, from the database (the devices only see ids). */
  async function tenantsOf(ids: string[]): Promise<Map<string, string>> {
    const rows: { id: string; tenant_id: string }[] = await t.db.query(
      `SELECT id, tenant_id FROM tasks WHERE id = ANY ($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.tenant_id]));
  }

  /** Every arrival on the fleet, in the order the devices saw them. */
  function arrivals(): { id: string; at: number }[] {
    return fleet.flatMap((d) => [...d.arrivals].map(([id, at]) => ({ id, at }))).sort((x, y) => x.at - y.at);
  }

  async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
      await sleep(20);
    }
  }

  const pendingCount = async (): Promise<number> =>
    ((await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE status <> 'completed'`)) as { n: number }[])[0].n;

  beforeAll(async () => {
    t = await startTestApp();
    a = await makeTenant(t, 'fair-a');
    b = await makeTenant(t, 'fair-b');
  });

  afterEach(async () => {
    fleet.splice(0).forEach((d) => d.close());
    await sleep(100);
    await truncate(t.db, 'task_events, tasks');
    await apiClient(t, t.keys.admin).patch(`/api/v1/tenants/${a.id}`, { limits: {} });
  });

  afterAll(async () => {
    await t.close();
  });

  const sharedDevice = (id: string, capacity = 1, finishAfterMs = 15): Promise<FleetDevice> =>
    FleetDevice.connect(t, t.keys.admin, { id, capacity, tags: [], capabilities: [], shared: true }, finishAfterMs);

  it('shared: true needs a global key: a tenant key gets a coded error naming the field, and no node', async () => {
    const d = new TestDevice(t.url, a.key);
    try {
      d.socket.emit('device_register', { device_id: 'not-shared', shared: true });
      const error = await d.next('error');
      expect(error).toMatchObject({ code: 'FORBIDDEN', details: { field: 'shared' } });
      const rows: unknown[] = await t.db.query(`SELECT 1 FROM nodes WHERE id = 'not-shared'`);
      expect(rows).toHaveLength(0);
      d.socket.emit('device_register', { device_id: 'not-shared', shared: 'yes' });
      const invalid = await d.next('error');
      expect(invalid).toMatchObject({ code: 'VALIDATION_ERROR' });
      expect(JSON.stringify(invalid)).toContain('shared');
    } finally {
      d.close();
    }
  });

  it("a global key's shared device serves every tenant; its node says shared; a tenant's own device stays its own", async () => {
    fleet.push(await sharedDevice('pool-1', 2));
    const node = await apiClient(t, t.keys.admin).get<{ shared: boolean }>('/api/v1/nodes/pool-1');
    expect(node.body.data.shared).toBe(true);
    const own = await FleetDevice.connect(t, t.keys.admin, { id: 'plain-1', capacity: 1, tags: [], capabilities: [] });
    fleet.push(own);
    expect((await apiClient(t, t.keys.admin).get<{ shared: boolean }>('/api/v1/nodes/plain-1')).body.data.shared).toBe(
      false,
    );
    const ofA = await submitBatch(a.api, work(5));
    const ofB = await submitBatch(b.api, work(5));
    await fleet[0].received([...ofA.ids, ...ofB.ids], 10_000);
    await waitFor(async () => (await pendingCount()) === 0, 10_000, 'all completed');
    // Each tenant sees its own task run on the shared node, and its result.
    const seen = await a.api.get<{ status: string; node_id: string }>(`/api/v1/tasks/${ofA.ids[0]}`);
    expect(seen.body.data).toMatchObject({ status: 'completed', node_id: 'pool-1' });
    // The global key's plain device is the default tenant's: it took none of theirs.
    expect(own.arrivals.size).toBe(0);
  });

  it("a tenant arriving behind another's backlog takes turns with it at once, not after it", async () => {
    fleet.push(await sharedDevice('pool-1'), await sharedDevice('pool-2'));
    const backlog = await submitBatch(a.api, work(300));
    await waitFor(() => arrivals().length >= 20, 15_000, 'A under way');
    const submitted = performance.now();
    const late = await submitBatch(b.api, work(10));
    await fleet[0].device.connected();
    await waitFor(() => late.ids.every((id) => fleet.some((d) => d.arrivals.has(id))), 15_000, "B's tasks arrive");
    const order = arrivals().filter((x) => x.at >= submitted);
    const lastOfB = Math.max(...late.ids.map((id) => order.findIndex((x) => x.id === id)));
    // Equal weights: B's 10 take every other slot, so they are all out within ~20 arrivals of B's
    // submission (A's backlog had ~270 to go: served oldest first, B would wait for all of it).
    expect(lastOfB).toBeLessThan(30);
    const left = backlog.ids.filter((id) => !fleet.some((d) => d.arrivals.has(id))).length;
    expect(left).toBeGreaterThan(150);
  });

  it('weights: a tenant of weight 3 gets about three turns for each of a tenant of weight 1', async () => {
    expect((await apiClient(t, t.keys.admin).patch(`/api/v1/tenants/${a.id}`, { limits: { weight: 3 } })).status).toBe(
      200,
    );
    // Both backlogs wait before any device is there, so the turns start with both queued.
    const ofA = await submitBatch(a.api, work(200));
    const ofB = await submitBatch(b.api, work(200));
    fleet.push(await sharedDevice('pool-1'), await sharedDevice('pool-2'));
    await waitFor(() => arrivals().length >= 120, 20_000, '120 arrivals');
    const tenants = await tenantsOf([...ofA.ids, ...ofB.ids]);
    const first = arrivals().slice(0, 120);
    const nA = first.filter((x) => tenants.get(x.id) === a.id).length;
    const nB = first.length - nA;
    expect(nA / nB).toBeGreaterThan(2.2);
    expect(nA / nB).toBeLessThan(4.2);
  });

  it("a single tenant alone gets all of the shared capacity; a tenant's own devices are used before the pool", async () => {
    fleet.push(await sharedDevice('pool-1', 3, 300), await sharedDevice('pool-2', 3, 300));
    const own = await FleetDevice.connect(t, a.key, { id: 'a-own', capacity: 2, tags: [], capabilities: [] }, 300);
    fleet.push(own);
    await submitBatch(a.api, work(8));
    await waitFor(() => arrivals().length === 8, 5000, 'eight running at once');
    expect(own.arrivals.size).toBe(2);
    expect(fleet[0].arrivals.size + fleet[1].arrivals.size).toBe(6);
  });

  it('global pull workers take the tenants in turns too', async () => {
    await submitBatch(a.api, work(40, 'pull'));
    await submitBatch(b.api, work(10, 'pull'));
    const worker = apiClient(t, t.keys.admin);
    const got: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await worker.get<{ task_id: string }>('/api/v1/tasks/next?worker_id=global-1');
      expect(res.status).toBe(200);
      got.push(res.body.data.task_id);
    }
    const tenants = await tenantsOf(got);
    const ofB = got.filter((id) => tenants.get(id) === b.id).length;
    // Oldest first would give 20 of A; in turns, B's 10 are all among the first 20.
    expect(ofB).toBe(10);
    // A tenant's own worker still takes only its own.
    const own = await a.api.get<{ task_id: string }>('/api/v1/tasks/next?worker_id=a-1');
    expect((await tenantsOf([own.body.data.task_id])).get(own.body.data.task_id)).toBe(a.id);
  });

  it('a weight must be a number from 0.01 to 1000: anything else is a coded 400 naming the field, nothing changed', async () => {
    const admin = apiClient(t, t.keys.admin);
    for (const weight of [0, -1, 'x', 1001]) {
      const res = await admin.patch(`/api/v1/tenants/${a.id}`, { limits: { weight } });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain('weight');
    }
    const tenant = await admin.get<{ limits: Record<string, unknown> }>(`/api/v1/tenants/${a.id}`);
    expect(tenant.body.data.limits.weight).toBeUndefined();
    const ok = await admin.patch<{ limits: { weight: number } }>(`/api/v1/tenants/${a.id}`, {
      limits: { weight: 0.5 },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data.limits.weight).toBe(0.5);
  });
});
