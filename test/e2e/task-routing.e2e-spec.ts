import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** One rule set routes connections and tasks: `task.*` conditions steer the dispatcher. */
describe('task routing by rules', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await t.close();
  });

  it('a rule on task.priority = high sends high tasks only to nodes tagged high-performance', async () => {
    const rule = await admin.post('/api/v1/routing/rules', {
      name: 'high to fast nodes',
      priority: 10,
      conditions: [{ field: 'task.priority', operator: 'equals', value: 'high' }],
      target_strategy: 'least_connections',
      target_tags: ['high-performance'],
    });
    expect(rule.status).toBe(201);

    const fast = new TestDevice(t.url, t.keys.worker);
    const slow = new TestDevice(t.url, t.keys.worker);
    devices.push(fast, slow);
    await fast.register('fast', { capacity: 10, tags: ['high-performance'] });
    await slow.register('slow', { capacity: 10 });

    const high: string[] = [];
    const low: string[] = [];
    for (let i = 0; i < 5; i++) {
      high.push((await client.post<Task>('/api/v1/tasks', { prompt: `h${i}`, priority: 'high' })).body.data.task_id);
      low.push((await client.post<Task>('/api/v1/tasks', { prompt: `l${i}`, priority: 'low' })).body.data.task_id);
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
    const id = (await client.post<Task>('/api/v1/tasks', { prompt: 'urgent-ish', priority: 'high' })).body.data.task_id;
    const other = (await client.post<Task>('/api/v1/tasks', { prompt: 'plain', priority: 'medium' })).body.data.task_id;
    for (let i = 0; i < 100; i++) {
      const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [other]);
      if (row.status === 'dispatched') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const [routed] = await t.db.query(`SELECT status, node_id FROM tasks WHERE id = $1`, [id]);
    expect(routed).toEqual({ status: 'pending', node_id: null });
  });
});
