import { runAsTenant } from '../../src/database/tenant-context.js';
import { Dispatcher } from '../../src/modules/dispatch/dispatcher.service.js';
import { NodeLogsService } from '../../src/modules/nodes/node-logs.service.js';
import { NodesService } from '../../src/modules/nodes/nodes.service.js';
import { type Api, apiClient } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

const KEYS = '/api/v1/api-keys';

/**
 * Work the hub does for several tenants at once, whoever's event set it off: the dispatcher
 * serves every tenant in every round and each task meets only its own tenant's routing rules;
 * buffered heartbeats and node log lines of two tenants land each with its own tenant
 * (docs/tenants.md).
 */
describe('tenants: work done for several tenants at once', () => {
  let t: TestApp;
  let global: Api;
  const keys: Record<string, { client: Api; worker: string }> = {};
  const devices: TestDevice[] = [];

  const device = async (tenant: string, id: string, extra: Record<string, unknown> = {}): Promise<TestDevice> => {
    const d = new TestDevice(t.url, keys[tenant].worker);
    devices.push(d);
    await d.register(id, extra);
    return d;
  };
  const submit = async (tenant: string, body: Record<string, unknown>): Promise<string> => {
    const res = await keys[tenant].client.post<{ task_id: string }>('/api/v1/tasks', body);
    expect(res.status).toBe(201);
    return res.body.data.task_id;
  };

  beforeAll(async () => {
    // The safety tick far away: only events may wake the dispatcher in these tests.
    // (And the liveness tick, which also flushes heartbeats, as the system.)
    t = await startTestApp({ DISPATCH_SAFETY_TICK_MS: '600000', NODE_LIVENESS_TICK_MS: '600000' });
    global = apiClient(t, t.keys.admin);
    for (const id of ['tenant-a', 'tenant-b']) {
      expect((await global.post('/api/v1/tenants', { id, name: id })).status).toBe(201);
      const client = await global.post<{ key: string }>(KEYS, {
        name: `${id}-c`,
        roles: ['client', 'admin'],
        tenant_id: id,
      });
      const worker = await global.post<{ key: string }>(KEYS, { name: `${id}-w`, roles: ['worker'], tenant_id: id });
      keys[id] = { client: apiClient(t, client.body.data.key), worker: worker.body.data.key };
    }
  });
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    await truncate(t.db, 'task_events, tasks, node_logs, nodes, routing_rules');
  });
  afterAll(() => t.close());

  it("a round woken in tenant A's context hands out tenant B's ready work too", async () => {
    const b = await device('tenant-b', 'b-node');
    // B's node looks busy to the dispatcher while B's task comes in (no event wakes it later).
    await t.db.query(`UPDATE nodes SET draining = true WHERE id = 'b-node'`);
    const taskB = await submit('tenant-b', { prompt: 'for B' });
    await t.app.get(Dispatcher).runRound();
    expect(b.received.filter((r) => r.event === 'new_task')).toEqual([]);
    await t.db.query(`UPDATE nodes SET draining = false WHERE id = 'b-node'`);
    // A kick from inside tenant A's context, as a request of A's submitting a task makes one.
    runAsTenant('tenant-a', () => t.app.get(Dispatcher).kick());
    expect((await b.next('new_task', () => true, 2000)).task_id).toBe(taskB);
  });

  it("tenant A's routing rule routes A's tasks only; B's task of the same kind goes to B's untagged node", async () => {
    const rule = await keys['tenant-a'].client.post('/api/v1/routing/rules', {
      name: 'special to gpu',
      priority: 10,
      conditions: [{ field: 'task.type', operator: 'equals', value: 'special' }],
      target_strategy: 'least_connections',
      target_tags: ['gpu'],
    });
    expect(rule.status).toBe(201);
    const aPlain = await device('tenant-a', 'a-plain', { capacity: 5 });
    const aGpu = await device('tenant-a', 'a-gpu', { capacity: 5, tags: ['gpu'] });
    const bPlain = await device('tenant-b', 'b-plain', { capacity: 5 });
    const taskA = await submit('tenant-a', { type: 'special', prompt: 'A special' });
    const taskB = await submit('tenant-b', { type: 'special', prompt: 'B special' });
    expect((await aGpu.next('new_task', (m) => m.task_id === taskA, 2000)).task_id).toBe(taskA);
    // Under A's rule B's task would need a gpu node, and B has none: it would wait forever.
    expect((await bPlain.next('new_task', (m) => m.task_id === taskB, 2000)).task_id).toBe(taskB);
    expect(aPlain.received.filter((r) => r.event === 'new_task')).toEqual([]);
    const placed = (await t.db.query(`SELECT id, node_id, tenant_id FROM tasks ORDER BY tenant_id`)) as unknown[];
    expect(placed).toEqual([
      { id: taskA, node_id: 'a-gpu', tenant_id: 'tenant-a' },
      { id: taskB, node_id: 'b-plain', tenant_id: 'tenant-b' },
    ]);
  });

  it("heartbeats of two tenants' nodes buffered together are all written", async () => {
    await device('tenant-a', 'a-beat');
    await device('tenant-b', 'b-beat');
    const nodes = t.app.get(NodesService);
    await nodes.flushHeartbeats(); // nothing buffered: the next heartbeat arms the timer
    // The flush timer is armed by the first heartbeat, in its tenant's context.
    runAsTenant('tenant-a', () => nodes.heartbeat('a-beat', { resources: { cpu: 11 } }));
    runAsTenant('tenant-b', () => nodes.heartbeat('b-beat', { resources: { cpu: 22 } }));
    let rows: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rows = await t.db.query(`SELECT id, resources FROM nodes WHERE resources IS NOT NULL ORDER BY id`);
      if (rows.length === 2) break;
    }
    expect(rows).toEqual([
      { id: 'a-beat', resources: { cpu: 11 } },
      { id: 'b-beat', resources: { cpu: 22 } },
    ]);
  });

  it('node log lines of two tenants in one tick each keep their own tenant', async () => {
    await device('tenant-a', 'a-log');
    await device('tenant-b', 'b-log');
    const logs = t.app.get(NodeLogsService);
    await Promise.all([
      runAsTenant('tenant-a', () => logs.record({ node_id: 'a-log', level: 'info', message: 'from A' })),
      runAsTenant('tenant-b', () => logs.record({ node_id: 'b-log', level: 'info', message: 'from B' })),
    ]);
    const rows = await t.db.query(`SELECT node_id, tenant_id FROM node_logs ORDER BY node_id`);
    expect(rows).toEqual([
      { node_id: 'a-log', tenant_id: 'tenant-a' },
      { node_id: 'b-log', tenant_id: 'tenant-b' },
    ]);
    // And each tenant's admin sees its own line only.
    const seen = await keys['tenant-b'].client.get<{ logs: { message: string }[] }>('/api/v1/logs');
    expect(seen.body.data.logs.map((l) => l.message)).toEqual(['from B']);
  });
});
