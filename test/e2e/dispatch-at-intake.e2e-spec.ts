import { AppConfig } from '../../src/config/app-config.js';
import { apiClient, type Api } from '../support/api.js';
import { FleetDevice, heldCount, makeTenant, sleep, submitOne } from '../support/dispatch-fleet.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * Assignment at intake (issue 27, docs/devices-and-nodes.md): a task submitted alone while an
 * open node may take it and nothing waits before it is inserted and assigned in one statement
 * (one commit per pickup). Its row then shows `dispatched_at = created_at` (one transaction's
 * now()); a task placed by a dispatch round is dispatched in a later transaction.
 */
describe('dispatch: assignment at intake', () => {
  let t: TestApp;
  let client: Api;
  let config: AppConfig;
  const devices: FleetDevice[] = [];

  interface Row {
    status: string;
    node_id: string | null;
    at_intake: boolean;
    attempt: number;
  }
  const row = async (id: string): Promise<Row> =>
    (
      (await t.db.query(
        `SELECT status, node_id, attempt, dispatched_at IS NOT NULL AND dispatched_at = created_at AS at_intake
         FROM tasks WHERE id = $1`,
        [id],
      )) as Row[]
    )[0];
  /**
   * Until the task is acknowledged (running): a device's first ack also marks its node row
   * (`acks`), and an intake that meets the row locked skips the node (SKIP LOCKED, as a round
   * does) and leaves the task to the round. Tests that pin "at intake" let that write pass first.
   */
  const acked = async (id: string): Promise<void> => {
    for (let i = 0; i < 100 && (await row(id)).status !== 'running'; i++) await sleep(20);
    expect((await row(id)).status).toBe('running');
  };
  const events = async (id: string): Promise<{ type: string; attempt: number }[]> =>
    t.db.query(`SELECT type, attempt FROM task_events WHERE task_id = $1 ORDER BY id`, [id]);
  const device = async (
    key: string,
    spec: { id: string; capacity?: number; tags?: string[]; capabilities?: string[] },
  ): Promise<FleetDevice> => {
    const d = await FleetDevice.connect(t, key, {
      capacity: 1,
      tags: [],
      capabilities: [],
      ...spec,
    });
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    config = t.app.get(AppConfig);
  });
  afterAll(() => t.close());
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    config.DISPATCH_AT_INTAKE = true;
    await sleep(100); // the disconnects' bookkeeping
    await truncate(t.db, 'task_events, tasks, nodes');
  });

  it('an idle device gets a task in its insert: one transaction, events created then dispatched', async () => {
    const d = await device(t.keys.worker, { id: 'intake-1', capacity: 2 });
    const { id } = await submitOne(client, { prompt: 'now' });
    expect(await row(id)).toMatchObject({ node_id: 'intake-1', at_intake: true, attempt: 1 });
    await d.received([id], 2000);
    const evs = await events(id);
    expect(evs.slice(0, 2)).toEqual([
      { type: 'created', attempt: 0 },
      { type: 'dispatched', attempt: 1 },
    ]);
  });

  it('with DISPATCH_AT_INTAKE off, the same task waits for a dispatch round (and still arrives)', async () => {
    config.DISPATCH_AT_INTAKE = false;
    const d = await device(t.keys.worker, { id: 'intake-off' });
    const { id } = await submitOne(client, { prompt: 'round' });
    await d.received([id], 2000);
    expect(await row(id)).toMatchObject({ node_id: 'intake-off', at_intake: false });
  });

  it('never overtakes waiting work: behind a ready task, a submission goes through the round', async () => {
    const d = await device(t.keys.worker, { id: 'intake-backlog', capacity: 4 });
    // Ready but placeable nowhere: it keeps the tenant's queue non-empty.
    const stuck = await submitOne(client, { prompt: 'stuck', required_tags: ['no-such-tag'] });
    const { id } = await submitOne(client, { prompt: 'behind' });
    await d.received([id], 2000);
    expect(await row(stuck.id)).toMatchObject({ status: 'pending', node_id: null });
    expect(await row(id)).toMatchObject({ node_id: 'intake-backlog', at_intake: false });
  });

  it('respects capacity: a full device gets nothing more, the rest stay pending', async () => {
    await device(t.keys.worker, { id: 'intake-cap', capacity: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { id } = await submitOne(client, { prompt: `cap ${i}` });
      ids.push(id);
      if (i < 2) await acked(id);
    }
    await sleep(300);
    const rows = await Promise.all(ids.map(row));
    expect(rows.filter((r) => r.node_id === 'intake-cap')).toHaveLength(2);
    expect(rows.slice(0, 2).every((r) => r.at_intake)).toBe(true);
    expect(rows.slice(2).map((r) => r.status)).toEqual(['pending', 'pending', 'pending']);
    expect(await heldCount(t.db)).toBe(2);
  });

  it('concurrent submissions to a one-slot device: never more than one held', async () => {
    await device(t.keys.worker, { id: 'intake-race', capacity: 1 });
    const others = Array.from({ length: 3 }, () => apiClient(t, t.keys.client));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => submitOne(others[i % others.length], { prompt: `race ${i}` })),
    );
    await sleep(300);
    expect(await heldCount(t.db)).toBe(1);
  });

  it('only eligible nodes: tags, capabilities and a named target are honoured', async () => {
    const d = await device(t.keys.worker, {
      id: 'intake-gpu',
      capacity: 4,
      tags: ['gpu'],
      capabilities: ['render'],
    });
    const wrongTag = await submitOne(client, { type: 'render', prompt: 'x', required_tags: ['cpu'] });
    expect(await row(wrongTag.id)).toMatchObject({ status: 'pending', node_id: null });
    await truncate(t.db, 'task_events, tasks');
    const wrongType = await submitOne(client, { type: 'other', prompt: 'x' });
    expect(await row(wrongType.id)).toMatchObject({ status: 'pending', node_id: null });
    await truncate(t.db, 'task_events, tasks');
    const elsewhere = await submitOne(client, { type: 'render', prompt: 'x', target_node_id: 'not-here' });
    expect(await row(elsewhere.id)).toMatchObject({ status: 'pending', node_id: null });
    await truncate(t.db, 'task_events, tasks');
    const fits = await submitOne(client, { type: 'render', prompt: 'x', required_tags: ['gpu'] });
    expect(await row(fits.id)).toMatchObject({ node_id: 'intake-gpu', at_intake: true });
    await acked(fits.id);
    const named = await submitOne(client, { type: 'other', prompt: 'x', target_node_id: 'intake-gpu' });
    expect(await row(named.id)).toMatchObject({ node_id: 'intake-gpu', at_intake: true });
    await d.received([fits.id, named.id], 2000);
  });

  it("a tenant's task never lands on another tenant's idle device", async () => {
    const a = await makeTenant(t, 'intake-a');
    const b = await makeTenant(t, 'intake-b');
    await device(a.key, { id: 'intake-a-dev', capacity: 4 });
    const fromB = await submitOne(b.api, { prompt: 'b' });
    expect(await row(fromB.id)).toMatchObject({ status: 'pending', node_id: null });
    const fromA = await submitOne(a.api, { prompt: 'a' });
    expect(await row(fromA.id)).toMatchObject({ node_id: 'intake-a-dev', at_intake: true });
  });

  it('a task a routing rule matches is left to the round, which applies the rule', async () => {
    const admin = apiClient(t, t.keys.admin);
    const rule = await admin.post<{ id: string }>('/api/v1/routing/rules', {
      name: 'reports to tag r',
      priority: 10,
      conditions: [{ field: 'task.type', operator: 'equals', value: 'report' }],
      target_strategy: 'least_connections',
      target_tags: ['r'],
    });
    expect(rule.status).toBe(201);
    try {
      await device(t.keys.worker, { id: 'intake-plain', capacity: 4 });
      const r = await device(t.keys.worker, { id: 'intake-r', capacity: 4, tags: ['r'] });
      const { id } = await submitOne(client, { type: 'report', prompt: 'routed' });
      await r.received([id], 2000);
      expect(await row(id)).toMatchObject({ node_id: 'intake-r', at_intake: false });
    } finally {
      expect((await admin.delete(`/api/v1/routing/rules/${rule.body.data.id}`)).status).toBe(200);
    }
  });
});
