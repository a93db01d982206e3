import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { parsePromText, type PromSample, samples, valueOf } from '../support/prom-text.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { TASK_TYPE_LABEL_LIMIT } from '../../src/modules/metrics/metrics.service.js';

/**
 * The operator's series (docs/observability.md, "Metrics") against a real hub, database and
 * Socket.IO device: pickup and run time by type, queue depth and age by tenant and priority,
 * the bound on the type label, socket connections, and what a tenant key sees of them.
 */
describe('metrics an operator graphs', () => {
  let t: TestApp;
  let client: Api;
  let admin: Api;
  const TENANT = 'metrics-acme';
  let tenantKey: string;

  const scrape = async (key: string = t.keys.admin): Promise<PromSample[]> => {
    const res = await fetch(`${t.url}/metrics`, {
      headers: { Accept: 'text/plain;version=0.0.4', Authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    return parsePromText(await res.text());
  };

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    admin = apiClient(t, t.keys.admin);
    expect((await admin.post('/api/v1/tenants', { id: TENANT, name: 'Acme' })).status).toBe(201);
    const made = await admin.post<{ key: string }>('/api/v1/api-keys', {
      name: 'acme-client',
      roles: ['client'],
      tenant_id: TENANT,
    });
    tenantKey = made.body.data.key;
  });
  afterAll(() => t.close());

  it('pickup latency and run time are counted by task type once a device ran the tasks; a device is a socket connection', async () => {
    const d = new TestDevice(t.url, t.keys.worker);
    try {
      await d.register('metrics-dev-1');
      const before = await scrape();
      expect(valueOf(before, 'taskhub_socket_connections', { channel: 'device' })).toBe(1);
      // Every channel is there, counted or not (the agent proxy's registry is found at bootstrap).
      expect(
        samples(before, 'taskhub_socket_connections')
          .map((x) => x.labels.channel)
          .sort(),
      ).toEqual(['device', 'events', 'log', 'node', 'proxy', 'ws']);
      const types = ['resize', 'resize', 'transcode'];
      for (const type of types)
        expect((await client.post<Task>('/api/v1/tasks', { type, prompt: 'x' })).status).toBe(201);
      for (let i = 0; i < types.length; i++) {
        const job = await d.next('new_task');
        await new Promise((r) => setTimeout(r, 20)); // a run time above zero
        expect(await d.request('task_result', { task_id: job.task_id, result: { success: true } })).toMatchObject({
          success: true,
        });
      }
      const after = await scrape();
      const count = (name: string, type: string): number =>
        valueOf(after, `${name}_count`, { tenant: 'default', type }) ?? 0;
      expect(count('taskhub_task_pickup_seconds', 'resize')).toBe(2);
      expect(count('taskhub_task_pickup_seconds', 'transcode')).toBe(1);
      expect(count('taskhub_task_run_seconds', 'resize')).toBe(2);
      expect(count('taskhub_task_run_seconds', 'transcode')).toBe(1);
      expect(valueOf(after, 'taskhub_task_run_seconds_sum', { tenant: 'default', type: 'resize' })).toBeGreaterThan(
        0.02,
      );
      // No task id is a label anywhere.
      expect(after.some((s) => Object.keys(s.labels).some((k) => /task_?id/.test(k)))).toBe(false);
      expect(valueOf(after, 'taskhub_dispatch_round_seconds_count')).toBeGreaterThan(0);
    } finally {
      d.close();
    }
    // The device's socket is gone from the gauge once it disconnects.
    for (let i = 0; i < 50 && valueOf(await scrape(), 'taskhub_socket_connections', { channel: 'device' }) !== 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(valueOf(await scrape(), 'taskhub_socket_connections', { channel: 'device' })).toBe(0);
  });

  it('queue depth and oldest age per tenant and priority match a known backlog; a tenant sees its own only', async () => {
    await truncate(t.db, 'tasks, task_events');
    const acme = apiClient(t, tenantKey);
    for (let i = 0; i < 3; i++)
      expect((await client.post('/api/v1/tasks', { prompt: `h${i}`, priority: 'high' })).status).toBe(201);
    for (let i = 0; i < 2; i++)
      expect((await client.post('/api/v1/tasks', { prompt: `l${i}`, priority: 'low' })).status).toBe(201);
    expect(
      (await acme.post('/api/v1/tasks', { prompt: 'a', priority: 'urgent', type: 'acme-secret-type' })).status,
    ).toBe(201);
    // A delayed task counts in the depth but has not waited yet.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    expect((await client.post('/api/v1/tasks', { prompt: 'later', priority: 'medium', run_at: later })).status).toBe(
      201,
    );
    // The oldest high task became ready 120 s ago, the oldest low one 30 s ago.
    await t.db.query(
      `UPDATE tasks SET run_at = now() - interval '120 seconds' WHERE id = (SELECT id FROM tasks WHERE prompt = 'h1')`,
    );
    await t.db.query(`UPDATE tasks SET run_at = now() - interval '30 seconds' WHERE prompt = 'l0'`);

    const all = await scrape();
    const depth = (tenant: string, priority: string): number | undefined =>
      valueOf(all, 'taskhub_queue_depth', { tenant, priority });
    const age = (tenant: string, priority: string): number | undefined =>
      valueOf(all, 'taskhub_queue_oldest_age_seconds', { tenant, priority });
    expect(depth('default', 'high')).toBe(3);
    expect(depth('default', 'low')).toBe(2);
    expect(depth('default', 'medium')).toBe(1);
    expect(depth(TENANT, 'urgent')).toBe(1);
    expect(samples(all, 'taskhub_queue_depth')).toHaveLength(4);
    expect(age('default', 'high')).toBeGreaterThanOrEqual(120);
    expect(age('default', 'high')).toBeLessThan(130);
    expect(age('default', 'low')).toBeGreaterThanOrEqual(30);
    expect(age('default', 'low')).toBeLessThan(40);
    expect(age('default', 'medium')).toBe(0);
    expect(age(TENANT, 'urgent')).toBeLessThan(10);

    // The tenant's key: its own queue only, and no other tenant's per-type series.
    const own = await scrape(tenantKey);
    expect(samples(own, 'taskhub_queue_depth').map((s) => s.labels)).toEqual([{ tenant: TENANT, priority: 'urgent' }]);
    expect(own.filter((s) => s.labels.tenant !== undefined && s.labels.tenant !== TENANT)).toEqual([]);
    expect(samples(own, 'taskhub_task_pickup_seconds_count')).toEqual([]);
    // The default tenant's client key does not see the acme task type or queue.
    const other = await scrape(t.keys.client);
    expect(other.some((s) => s.labels.tenant === TENANT)).toBe(false);
    expect(samples(other, 'taskhub_task_pickup_seconds_count', { tenant: 'default', type: 'resize' })).toHaveLength(1);
  });

  it('HTTP durations: a hot route by its path, a 404 as "unmatched", never the raw URL', async () => {
    const raw = `/no-such-route-${Date.now()}/x`;
    expect((await fetch(`${t.url}${raw}`, { headers: { Authorization: `Bearer ${t.keys.client}` } })).status).toBe(404);
    expect((await client.post('/api/v1/tasks', { prompt: 'hot' })).status).toBe(201);
    const all = await scrape();
    const routes = new Set(samples(all, 'taskhub_http_request_duration_seconds_count').map((s) => s.labels.route));
    expect(routes.has('/api/v1/tasks')).toBe(true);
    expect(routes.has('unmatched')).toBe(true);
    expect([...routes].some((r) => r.includes('no-such-route'))).toBe(false);
  });

  it(`the type label is bounded: past ${TASK_TYPE_LABEL_LIMIT} distinct types, later ones are "other"`, async () => {
    await truncate(t.db, 'tasks, task_events');
    const distinct = TASK_TYPE_LABEL_LIMIT + 20;
    const tasks = Array.from({ length: distinct }, (_, i) => ({ type: `bulk-type-${i}`, prompt: 'p' }));
    for (let i = 0; i < tasks.length; i += 50)
      expect((await client.post('/api/v1/tasks/batch', { tasks: tasks.slice(i, i + 50) })).status).toBe(201);
    const worker = apiClient(t, t.keys.worker);
    let taken = 0;
    for (;;) {
      const next = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=bulk-worker');
      if (!next.body.data) break;
      taken++;
    }
    expect(taken).toBe(distinct);
    const all = await scrape();
    const series = samples(all, 'taskhub_task_pickup_seconds_count');
    const types = new Set(series.map((s) => s.labels.type));
    expect(types.size).toBeLessThanOrEqual(TASK_TYPE_LABEL_LIMIT + 1);
    expect(types.has('other')).toBe(true);
    // Every pick-up is counted, named or not.
    const bulk = series.filter((s) => s.labels.type.startsWith('bulk-type-') || s.labels.type === 'other');
    expect(bulk.reduce((n, s) => n + s.value, 0)).toBe(distinct);
  });
});
