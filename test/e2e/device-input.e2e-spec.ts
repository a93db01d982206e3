import { io } from 'socket.io-client';
import { apiClient, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/** Bad device input gets an `error` event (and a failed ack), changes nothing, and never crashes the hub. */
describe('device channel: malformed payloads, auth, and many devices at once', () => {
  let t: TestApp;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterEach(() => devices.splice(0).forEach((d) => d.close()));
  afterAll(() => t.close());

  /** A device with the worker key, or with `key` as given (null: no key at all). */
  const device = (key: string | null = t.keys.worker): TestDevice => {
    const d = new TestDevice(t.url, key ?? undefined);
    devices.push(d);
    return d;
  };

  const snapshot = async (): Promise<unknown> => ({
    tasks: await t.db.query(`SELECT id, status, attempt, progress, result FROM tasks ORDER BY id`),
    nodes: await t.db.query(`SELECT id, status, capacity FROM nodes ORDER BY id`),
    events: (await t.db.query(`SELECT count(*)::int AS n FROM task_events`))[0].n,
  });

  it.each([
    ['device_register', undefined, 'payload'],
    ['device_register', 'android_001', 'payload'],
    ['device_register', [1, 2], 'payload'],
    ['device_register', {}, 'device_id'],
    ['device_register', { device_id: 42 }, 'device_id'],
    ['device_register', { device_id: '' }, 'device_id'],
    ['device_register', { device_id: 'x', capacity: 0 }, 'capacity'],
    ['device_register', { device_id: 'x', capacity: 'lots' }, 'capacity'],
    ['device_register', { device_id: 'x', tags: 'gpu' }, 'tags'],
    ['device_register', { device_id: 'x', device_info: 'phone' }, 'device_info'],
    ['node_register', {}, 'node_id'],
    ['node_register', { node_id: ['n'] }, 'node_id'],
    ['task_progress', {}, 'task_id'],
    ['task_progress', { task_id: 'task_001', progress: 10 }, 'task_id'],
    ['task_progress', { task_id: '00000000-0000-4000-8000-000000000000', progress: 150 }, 'progress'],
    ['task_progress', { task_id: '00000000-0000-4000-8000-000000000000', progress: 'half' }, 'progress'],
    ['task_result', { result: { success: true } }, 'task_id'],
    ['task_result', { task_id: '00000000-0000-4000-8000-000000000000', attempt: 'one' }, 'attempt'],
    ['task_result', { task_id: '00000000-0000-4000-8000-000000000000', error: 42 }, 'error'],
    ['log', { level: 'loud', message: 'x' }, 'level'],
    ['log', {}, 'message'],
    ['heartbeat', 'ping', 'payload'],
  ])('%s with %j → error naming %s, nothing changed', async (event, payload, field) => {
    const d = device();
    await d.connected();
    if (!event.endsWith('register')) await d.register('well-formed');
    const before = await snapshot();
    const ack = await d.request(event, payload);
    expect(ack).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', details: { field } } });
    expect(await d.next('error')).toMatchObject({ code: 'VALIDATION_ERROR', event });
    expect(await snapshot()).toEqual(before);
    // The connection stays usable.
    const hb = await d.request('heartbeat', {});
    if (event.endsWith('register')) expect(hb).toMatchObject({ success: false, error: { code: 'NOT_REGISTERED' } });
    else expect(typeof hb.server_time).toBe('string');
  });

  it('reports on an unknown task are NOT_FOUND; reports with no registration within 2 s are NOT_REGISTERED', async () => {
    const d = device();
    await d.connected();
    const started = Date.now();
    const early = await d.request('task_result', { task_id: '00000000-0000-4000-8000-000000000000', result: {} });
    expect(early).toMatchObject({ success: false, error: { code: 'NOT_REGISTERED' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // it waited for a registration that never came
    expect(await d.request('heartbeat', {})).toMatchObject({ success: false, error: { code: 'NOT_REGISTERED' } }); // not parked
    await d.register('reporter');
    const unknown = await d.request('task_progress', { task_id: '00000000-0000-4000-8000-000000000000', progress: 5 });
    expect(unknown).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
    const unknownEvent = await d.request('format_disk', {});
    expect(unknownEvent).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'event' } },
    });
  });

  it('refuses sockets without a key, with a bad key, or with a client key', async () => {
    for (const [key, code] of [
      [null, 'UNAUTHORIZED'],
      ['th_wrong', 'UNAUTHORIZED'],
      [t.keys.client, 'FORBIDDEN'],
    ] as const) {
      const d = device(key);
      const error = await d.next('error');
      expect(error).toMatchObject({ code });
      await new Promise<void>((r) => (d.socket.connected ? d.socket.once('disconnect', () => r()) : r()));
      expect(d.socket.connected).toBe(false);
    }
    const viaHeader = io(t.url, {
      transports: ['websocket'],
      extraHeaders: { Authorization: `Bearer ${t.keys.worker}` },
      reconnection: false,
      forceNew: true,
    });
    const viaQuery = io(t.url, {
      transports: ['websocket'],
      query: { token: t.keys.worker },
      reconnection: false,
      forceNew: true,
    });
    try {
      for (const s of [viaHeader, viaQuery]) {
        const ack = (await s
          .timeout(5000)
          .emitWithAck('device_register', { device_id: `auth-${s === viaHeader ? 'h' : 'q'}` })) as Record<
          string,
          unknown
        >;
        expect(ack).toMatchObject({ success: true });
      }
    } finally {
      viaHeader.disconnect();
      viaQuery.disconnect();
    }
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM nodes WHERE id LIKE 'auth-%'`);
    expect(rows[0].n).toBe(2);
  });

  it('200 devices register at once, each once, and share out tasks', async () => {
    await truncate(t.db, 'task_events, tasks, nodes');
    const many = Array.from({ length: 200 }, () => device());
    const acks = await Promise.all(
      many.map((d, i) => d.request('device_register', { device_id: `fleet-${i}` }, 20_000)),
    );
    expect(acks.every((a) => a.success === true)).toBe(true);
    const rows = await t.db.query(
      `SELECT count(*)::int AS n, count(DISTINCT socket_id)::int AS sockets FROM nodes WHERE status = 'online'`,
    );
    expect(rows[0]).toEqual({ n: 200, sockets: 200 });
    const client = apiClient(t, t.keys.client);
    await client.post('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 200 }, (_, i) => ({ prompt: `job ${i}` })),
    });
    const got = await Promise.all(many.map((d) => d.next('new_task', () => true, 20_000)));
    expect(new Set(got.map((g) => g.task_id)).size).toBe(200);
    const perNode = await t.db.query(
      `SELECT node_id, count(*)::int AS n FROM tasks GROUP BY node_id HAVING count(*) > 1`,
    );
    expect(perNode).toEqual([]);
    const page = await client.get<{ tasks: Task[] }>('/api/v1/tasks?status=dispatched&limit=1');
    expect(page.status).toBe(200);
  }, 60_000);
});
