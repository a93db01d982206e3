import type { HubClient, HubSchemas } from '../../src/sdk/hub-client.js';
import { hubApi } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** One rule set routes connections and tasks: `task.*` conditions steer the dispatcher. */
describe('task routing by rules', () => {
  let t: TestApp;
  let admin: HubClient;
  let client: HubClient;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    admin = hubApi(t, t.keys.admin);
    client = hubApi(t, t.keys.client);
  });
  /** POST /api/v1/tasks through the typed client; the new task's id. */
  async function submit(body: HubSchemas['CreateTaskDto']): Promise<string> {
    const { data, response } = await client.POST('/api/v1/tasks', { body });
    expect(response.status).toBe(201);
    return data!.data.task_id;
  }

  afterAll(async () => {
    devices.forEach((d) => d.close());
    await t.close();
  });

  it('a rule on task.priority = high sends high tasks only to nodes tagged high-performance', async () => {
    const rule = await admin.POST('/api/v1/routing/rules', {
      body: {
        name: 'high to fast nodes',
        priority: 10,
        conditions: [{ field: 'task.priority', operator: 'equals', value: 'high' }],
        target_strategy: 'least_connections',
        target_tags: ['high-performance'],
      },
    });
    expect(rule.response.status).toBe(201);

    const fast = new TestDevice(t.url, t.keys.worker);
    const slow = new TestDevice(t.url, t.keys.worker);
    devices.push(fast, slow);
    await fast.register('fast', { capacity: 10, tags: ['high-performance'] });
    await slow.register('slow', { capacity: 10 });

    const high: string[] = [];
    const low: string[] = [];
    for (let i = 0; i < 5; i++) {
      high.push(await submit({ prompt: `h${i}`, priority: 'high' }));
      low.push(await submit({ prompt: `l${i}`, priority: 'low' }));
    }
    for (let i = 0; i < 100; i++) {
      const rows = await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'dispatched'`);
      if (rows[0].n === 10) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const placed: { id: string; node_id: string }[] = await t.db.query(
      `SELECT id, node_id FROM tasks WHERE status = 'dispatched'`,
    );
    const nodeOf = new Map(placed.map((p) => [p.id, p.node_id]));
    expect(high.map((id) => nodeOf.get(id))).toEqual(['fast', 'fast', 'fast', 'fast', 'fast']);
    // Low tasks follow the default strategy (least-loaded), so the untagged node takes them.
    expect(low.every((id) => nodeOf.get(id) === 'slow' || nodeOf.get(id) === 'fast')).toBe(true);
    expect(low.filter((id) => nodeOf.get(id) === 'slow').length).toBeGreaterThan(0);
  });

  it('with no node carrying the rule tags, routed tasks wait instead of going elsewhere', async () => {
    await t.db.query(`UPDATE nodes SET draining = true WHERE id = 'fast'`);
    const id = await submit({ prompt: 'urgent-ish', priority: 'high' });
    const other = await submit({ prompt: 'plain', priority: 'medium' });
    for (let i = 0; i < 100; i++) {
      const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [other]);
      if (row.status === 'dispatched') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const [routed] = await t.db.query(`SELECT status, node_id FROM tasks WHERE id = $1`, [id]);
    expect(routed).toEqual({ status: 'pending', node_id: null });
  });
});
