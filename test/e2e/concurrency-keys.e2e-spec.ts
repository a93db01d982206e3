import { apiClient, type Api } from '../support/api.js';
import { allRuns, ExecDevice, maxOverlap, waitFor } from '../support/exec-device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * Concurrency keys (issue 29, docs/flow-control.md) on one hub, with real Socket.IO devices that
 * log when each task ran on them: a key's max_running holds however many devices are free, other
 * keys pass it, pull workers obey it too, and bad input stores nothing.
 */
describe('concurrency keys (one hub)', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  let worker: Api;
  const devices: ExecDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
  });

  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    // The nodes too: a closed device's disconnect may not be processed yet under load, and an
    // online leftover would take the next test's tasks (the pull test then found its key full).
    await truncate(t.db, 'tasks, task_events, nodes');
  });

  afterAll(async () => {
    await t.close();
  });

  const put = (key: string, body: unknown) => admin.put(`/api/v1/concurrency/${key}`, body);

  const submit = async (tasks: Record<string, unknown>[]): Promise<string[]> => {
    const res = await client.post<{ created: number; results: { task_id: string }[] }>('/api/v1/tasks/batch', {
      tasks,
    });
    expect(res.status).toBe(201);
    expect(res.body.data.created).toBe(tasks.length);
    return res.body.data.results.map((r) => r.task_id);
  };

  const statuses = async (ids: string[]): Promise<string[]> => {
    const rows: { status: string }[] = await t.db.query(`SELECT status FROM tasks WHERE id = ANY ($1::uuid[])`, [ids]);
    return rows.map((r) => r.status);
  };

  it('bad input is a coded 400 naming the field, and stores nothing', async () => {
    const cases: [string, unknown, string][] = [
      ['cust-1', { max_running: 2, burst: 3 }, 'burst'],
      ['cust-1', { max_running: 0 }, 'max_running'],
      ['cust-1', { max_per_minute: -5 }, 'max_per_minute'],
      ['cust-1', { max_running: 1.5 }, 'max_running'],
      ['cust-1', {}, 'max_running'],
      ['bad%20key', { max_running: 1 }, 'key'],
      ['x'.repeat(129), { max_running: 1 }, 'key'],
    ];
    for (const [key, body, field] of cases) {
      const res = await put(key, body);
      expect({
        key,
        body,
        status: res.status,
        code: res.body.error?.code,
        field: res.body.error?.details?.field,
      }).toEqual({ key, body, status: 400, code: 'VALIDATION_ERROR', field });
    }
    expect((await admin.get<{ limits: unknown[] }>('/api/v1/concurrency')).body.data.limits).toEqual([]);
    const bad = await client.post('/api/v1/tasks', { prompt: 'x', concurrency_key: 'no spaces' });
    expect([bad.status, bad.body.error?.details?.field]).toEqual([400, 'concurrency_key']);
    const badMeta = await client.post('/api/v1/tasks', { prompt: 'x', metadata: { concurrency_key: 7 } });
    expect([badMeta.status, badMeta.body.error?.details?.field]).toEqual([400, 'metadata']);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n).toBe(0);
    // and a client may read limits but not set them
    const asClient = await fetch(`${t.url}/api/v1/concurrency/cust-1`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${t.keys.client}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ max_running: 1 }),
    });
    expect(asClient.status).toBe(403);
  });

  it('40 tasks of cust-1 (max_running 2) on 10 devices: never more than 2 at once; cust-2 passes them', async () => {
    expect((await put('cust-1', { max_running: 2 })).status).toBe(200);
    for (let i = 0; i < 10; i++) devices.push(await ExecDevice.connect(t.url, t.keys.worker, `ck-dev-${i}`, 60));
    const cust1 = await submit(
      Array.from({ length: 40 }, (_, i) => ({ prompt: `c1-${i}`, concurrency_key: 'cust-1' })),
    );
    // a held task says why it waits
    await waitFor(
      'cust-1 at its limit',
      async () => (await statuses(cust1)).filter((s) => s === 'pending').length >= 30,
      5000,
    );
    // a held task says why it waits (between one end and the next start the key has room for a moment)
    const last = cust1[cust1.length - 1];
    await waitFor(
      'waiting_on of a held task',
      async () =>
        (await client.get<{ concurrency_key: string; waiting_on: string | null }>(`/api/v1/tasks/${last}`)).body.data
          .waiting_on === 'concurrency_key',
      5000,
    );
    // cust-2 (seed surface: metadata.concurrency_key) is submitted behind them and has no limit
    const cust2 = await submit(
      Array.from({ length: 16 }, (_, i) => ({ prompt: `c2-${i}`, metadata: { concurrency_key: 'cust-2' } })),
    );
    const done = (ids: string[]) => async () => (await statuses(ids)).every((s) => s === 'completed');
    await waitFor('cust-2 done', done(cust2), 10_000);
    const cust1DoneWhenCust2Was = (await statuses(cust1)).filter((s) => s === 'completed').length;
    await waitFor('cust-1 done', done(cust1), 30_000);
    const runs = allRuns(devices);
    expect(maxOverlap(runs, new Set(cust1))).toBe(2);
    expect(runs.filter((r) => cust1.includes(r.task_id))).toHaveLength(40);
    // cust-2 did not wait behind cust-1's backlog: most of cust-1 was still to run when cust-2 had finished
    expect(cust1DoneWhenCust2Was).toBeLessThan(30);
    expect(maxOverlap(runs, new Set(cust2))).toBeGreaterThan(2);
    const limit = await admin.get<Record<string, unknown>>('/api/v1/concurrency/cust-1');
    expect(limit.body.data).toMatchObject({ key: 'cust-1', max_running: 2, max_per_minute: null, running: 0 });
    expect(limit.body.data.started_last_minute).toBeGreaterThanOrEqual(40);
  }, 60_000);

  it("a pull worker's next honours the limit; lifting it lets the rest go", async () => {
    expect((await put('pull-1', { max_running: 1 })).status).toBe(200);
    const ids = await submit([1, 2, 3].map((i) => ({ prompt: `p-${i}`, concurrency_key: 'pull-1' })));
    const next = () => worker.get<{ task_id: string } | null>('/api/v1/tasks/next?worker_id=w1');
    const first = await next();
    expect(first.body.data?.task_id).toBe(ids[0]);
    expect((await next()).body.data).toBeNull(); // the key is at its limit
    const held = await client.get<{ waiting_on: string | null }>(`/api/v1/tasks/${ids[1]}`);
    expect(held.body.data.waiting_on).toBe('concurrency_key');
    expect(
      (await worker.post(`/api/v1/tasks/${ids[0]}/complete`, { worker_id: 'w1', result: { status: 'success' } }))
        .status,
    ).toBe(200);
    expect((await next()).body.data?.task_id).toBe(ids[1]);
    // a change applies to the next pick: raised to 2, the third may start too
    expect((await put('pull-1', { max_running: 2 })).status).toBe(200);
    expect((await next()).body.data?.task_id).toBe(ids[2]);
    expect((await admin.delete('/api/v1/concurrency/pull-1')).status).toBe(200);
    expect((await admin.get('/api/v1/concurrency/pull-1')).status).toBe(404);
  });
});
