import { io, type Socket } from 'socket.io-client';
import { apiClient, type Api, type Task } from '../support/api.js';
import { type ApexFrame, ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// Seed 001 (Apex Bridge): raw WebSocket node and log channels with the key in the path, over
// the same device protocol as the Socket.IO channel. Real hub, real ws clients, real PostgreSQL.
describe('Apex node and log channels (raw WebSocket)', () => {
  let t: TestApp;
  let client: Api;
  let admin: Api;
  const sockets: { close(): void }[] = [];

  const ws = (path: string): string => `${t.url.replace('http', 'ws')}${path}`;
  const nodePath = (key: string, base = 'abp-distributed-server'): string =>
    ws(`/${base}/VCP_Key=${encodeURIComponent(key)}`);
  const logPath = (key: string, query = '', base = 'ABPlog'): string =>
    ws(`/${base}/VCP_Key=${encodeURIComponent(key)}${query}`);

  async function connect(url: string): Promise<ApexSocket> {
    const s = await ApexSocket.open(url);
    sockets.push(s);
    return s;
  }

  async function registeredNode(nodeId: string, extra: Record<string, unknown> = {}): Promise<ApexSocket> {
    const node = await connect(nodePath(t.keys.worker));
    const reply = await node.request('node_register', {
      node_id: nodeId,
      name: `Node ${nodeId}`,
      type: 'worker',
      version: '1.2.3',
      ...extra,
    });
    expect(reply.type).toBe('register_success');
    return node;
  }

  const getTask = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;

  async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    t = await startTestApp({
      NODE_CHANNEL_MAX_FRAME_BYTES: '4096',
      NODE_RECONNECT_GRACE_MS: '20000',
      SOCKET_PING_INTERVAL_MS: '500',
    });
    client = apiClient(t, t.keys.client);
    admin = apiClient(t, t.keys.admin);
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.close());
    await truncate(t.db, 'task_events, tasks, nodes, node_logs');
  });
  afterAll(() => t.close());

  describe('upgrade', () => {
    it.each([
      ['a wrong key', () => nodePath('not-a-key'), 401],
      ['no key', () => ws('/abp-distributed-server/VCP_Key='), 401],
      ['no VCP_Key segment', () => ws('/distributed-server'), 401],
      ['a client key', () => nodePath(t.keys.client), 403],
      ['a wrong key on the log channel', () => logPath('nope'), 401],
      ['a worker key on the log channel', () => logPath(t.keys.worker), 403],
      ['an unknown path', () => ws('/no-such-channel/VCP_Key=x'), 404],
      ['a key path under an unknown channel', () => ws(`/ABPlogs/VCP_Key=${t.keys.admin}`), 404],
    ])('refuses %s at once', async (_what, url, status) => {
      const started = Date.now();
      const refused = await ApexSocket.refusal(url());
      expect(refused.status).toBe(status);
      expect(Date.now() - started).toBeLessThan(2000);
      // The body is the one socket error object.
      const code = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND' }[status];
      expect(JSON.parse(refused.body)).toEqual({
        code,
        error_code: code,
        message: expect.any(String),
        event: 'connect',
      });
    });

    it('keeps nothing of a refused node', async () => {
      await ApexSocket.refusal(nodePath('bad'));
      const nodes = await client.get<{ nodes: unknown[] }>('/v1/nodes');
      expect(nodes.body.data.nodes).toEqual([]);
    });

    it.each([['abp-distributed-server'], ['distributed-server']])(
      'accepts the worker key on /%s/VCP_Key=<key>',
      async (base) => {
        const node = await connect(nodePath(t.keys.worker, base));
        const reply = await node.request('node_register', { node_id: `n-${base}` });
        expect(reply).toMatchObject({ type: 'register_success', data: { node_id: `n-${base}` } });
        expect(node.frames.some((f) => f.type === 'warning')).toBe(false);
      },
    );

    it('accepts an admin key, and the deprecated /vcp-distributed-server path with one warning', async () => {
      const node = await connect(nodePath(t.keys.admin, 'vcp-distributed-server'));
      const warning = await node.nextOf('warning');
      expect(warning.data).toMatchObject({ code: 'DEPRECATED_PATH' });
      expect(String(warning.data.message)).toContain('/abp-distributed-server/');
      await node.request('node_register', { node_id: 'old-path' });
      await node.request('heartbeat', {});
      expect(node.frames.filter((f) => f.type === 'warning')).toHaveLength(1);
    });
  });

  describe('node lifecycle', () => {
    it('registers, stores what heartbeats report, and shows it in /v1/nodes', async () => {
      const node = await registeredNode('apex-1', {
        capabilities: ['shell'],
        persona: { name: 'Helper', tone: 'calm' },
        capacity: 2,
        tags: ['home'],
      });
      const ack = await node.request('heartbeat', {
        status: 'idle',
        resources: { cpu: 12.5, memory_mb: 512 },
        stats: { completed: 3, failed: 0 },
      });
      expect(ack.type).toBe('heartbeat_ack');
      const view = await until(
        () => client.get<Record<string, unknown>>('/v1/nodes/apex-1'),
        (r) => (r.body.data?.resources as { cpu?: number } | null)?.cpu === 12.5,
      );
      expect(view.body.data).toMatchObject({
        node_id: 'apex-1',
        type: 'worker',
        capabilities: ['shell'],
        persona: { name: 'Helper', tone: 'calm' },
        version: '1.2.3',
        status: 'online',
        reported_status: 'idle',
        resources: { cpu: 12.5, memory_mb: 512 },
        stats: { completed: 3, failed: 0 },
        capacity: 2,
        active_tasks: 0,
        transport: 'websocket',
        tasks: [],
      });
      expect(view.body.data.last_heartbeat).toEqual(expect.any(String));
      const list = await client.get<{ nodes: Record<string, unknown>[] }>('/v1/nodes');
      expect(list.body.data.nodes.map((n) => n.node_id)).toEqual(['apex-1']);
      // The canonical API shows the same node and its transport.
      const canonical = await client.get<Record<string, unknown>>('/api/v1/nodes/apex-1');
      expect(canonical.body.data).toMatchObject({
        transport: 'websocket',
        reported_status: 'idle',
        heartbeat_stats: { completed: 3, failed: 0 },
      });
      // A heartbeat that reports nothing keeps what was reported.
      await node.request('heartbeat', {});
      await new Promise((r) => setTimeout(r, 1300));
      expect((await client.get<Record<string, unknown>>('/v1/nodes/apex-1')).body.data.resources).toEqual({
        cpu: 12.5,
        memory_mb: 512,
      });
    });

    it('runs a task: task_assign, ack, log, progress and result, with the logs on the task and on the log channel', async () => {
      const logs = await connect(logPath(t.keys.admin));
      const node = await registeredNode('apex-run');
      const created = await client.post<Task>('/api/v1/tasks', {
        type: 'organize_files',
        data: { path: '/docs' },
        timeout_seconds: 120,
      });
      const id = created.body.data.task_id;
      const assign = await node.nextOf('task_assign');
      expect(assign.id).toBe(`assign:${id}:1`);
      expect(assign.data).toMatchObject({
        task_id: id,
        attempt: 1,
        action: 'organize_files',
        payload: { path: '/docs' },
        timeout_seconds: 120,
        callback: 'ws',
      });
      node.send('ack', undefined, assign.id);
      await until(
        () => getTask(id),
        (task) => task.state === 'running',
      );

      const logged = await node.request('log', {
        task_id: id,
        level: 'info',
        message: 'scanning /docs',
        data: { files: 3 },
      });
      expect(logged).toMatchObject({ type: 'ack', data: { success: true } });
      const progressed = await node.request('task_progress', { task_id: id, progress: 50, message: 'half way' });
      expect(progressed).toMatchObject({ type: 'ack', data: { success: true, progress: 50 } });
      const result = await node.request('task_result', {
        task_id: id,
        status: 'success',
        result: { summary: 'done', moved: 3 },
      });
      expect(result).toMatchObject({ type: 'ack', data: { success: true, task_id: id, status: 'completed' } });

      const task = await getTask(id);
      expect(task).toMatchObject({ state: 'completed', node_id: 'apex-run', result: { summary: 'done', moved: 3 } });
      const events = await client.get<{ logs: { type: string; message: string | null }[] }>(`/api/v1/tasks/${id}/logs`);
      expect(events.body.data.logs).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'log', message: 'scanning /docs' })]),
      );
      const line = await logs.nextOf('log', (f) => f.data.source === 'node' && f.data.message === 'scanning /docs');
      expect(line.data).toMatchObject({ level: 'info', node_id: 'apex-run', task_id: id, time: expect.any(String) });
      await logs.nextOf(
        'log',
        (f) => f.data.source === 'task' && f.data.task_id === id && String(f.data.message).endsWith('completed'),
      );
    });

    it('reports a failure with its error, and a failed task is an alert on /ws and /events', async () => {
      const stream = await connect(ws(`/ws?token=${t.keys.client}`));
      const events: Socket = io(`${t.url}/events`, { auth: { token: t.keys.client }, transports: ['websocket'] });
      sockets.push({ close: () => events.close() });
      const alerts: Record<string, unknown>[] = [];
      events.on('alert', (a: Record<string, unknown>) => alerts.push(a));
      await new Promise<void>((ok) => events.on('connect', () => ok()));
      const node = await registeredNode('apex-fail');
      const created = await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {}, max_retries: 0 });
      const id = created.body.data.task_id;
      await node.nextOf('task_assign');
      const reply = await node.request('task_result', { task_id: id, status: 'failed', error: 'disk full' });
      expect(reply.data).toMatchObject({ success: true, status: 'failed' });
      const task = await getTask(id);
      expect(task.error).toMatchObject({ message: 'disk full' });
      const alert = await stream.nextOf('alert', (f) => f.data.task_id === id);
      expect(alert.data).toMatchObject({ severity: 'warning', source: 'task', node_id: 'apex-fail' });
      expect(String(alert.data.message)).toContain('disk full');
      await until(
        async () => alerts,
        (a) => a.some((x) => x.task_id === id),
      );
    });

    it('relays a node notification to the client channels', async () => {
      const stream = await connect(ws(`/ws?token=${t.keys.client}`));
      const node = await registeredNode('apex-notify');
      const ack = await node.request('notification', {
        message: '明天 9 点开会',
        severity: 'info',
        data: { kind: 'reminder' },
      });
      expect(ack).toMatchObject({ type: 'ack', data: { success: true } });
      const n = await stream.nextOf('notification');
      expect(n.data).toMatchObject({
        severity: 'info',
        source: 'node',
        node_id: 'apex-notify',
        message: '明天 9 点开会',
        data: { kind: 'reminder' },
      });
    });

    it('tells the node to cancel a task it holds', async () => {
      const node = await registeredNode('apex-cancel');
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      await node.nextOf('task_assign');
      expect((await client.post(`/api/v1/tasks/${id}/cancel`, { reason: 'user changed mind' })).status).toBe(200);
      const cancel = await node.nextOf('cancel_task');
      expect(cancel.data).toMatchObject({ task_id: id, attempt: 1, reason: 'user changed mind' });
    });

    it('replaces the old connection when the same node_id registers again, telling it first', async () => {
      const first = await registeredNode('apex-dup');
      const second = await registeredNode('apex-dup');
      const told = await first.nextOf('error');
      expect(told.data).toMatchObject({ code: 'REPLACED', error_code: 'REPLACED', event: 'node_register' });
      expect((await first.waitClosed()).code).toBe(4001);
      expect(second.open).toBe(true);
      // Tasks now go to the new connection, and the node stays online.
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      expect((await second.nextOf('task_assign')).data.task_id).toBe(id);
      expect((await client.get<Record<string, unknown>>('/v1/nodes/apex-dup')).body.data.status).not.toBe('offline');
    });

    it('replaces a Socket.IO connection of the same node too', async () => {
      const device = new TestDevice(t.url, t.keys.worker);
      sockets.push({ close: () => device.close() });
      await device.connected();
      await device.request('node_register', { node_id: 'apex-both' });
      const disconnected = new Promise<void>((ok) => device.socket.on('disconnect', () => ok()));
      await registeredNode('apex-both');
      await disconnected;
      const view = await client.get<Record<string, unknown>>('/v1/nodes/apex-both');
      expect(view.body.data).toMatchObject({ transport: 'websocket', status: 'online' });
    });

    it('marks the node offline when its socket drops, and re-sends what it holds when it registers again', async () => {
      const node = await registeredNode('apex-drop');
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      await node.nextOf('task_assign');
      node.ws.terminate();
      await until(
        () => client.get<Record<string, unknown>>('/v1/nodes/apex-drop'),
        (r) => r.body.data.status === 'offline',
      );
      expect((await getTask(id)).state).toBe('dispatched'); // kept for the reconnect grace
      const again = await registeredNode('apex-drop');
      const resent = await again.nextOf('task_assign');
      expect(resent.data).toMatchObject({ task_id: id, attempt: 1 });
      await again.request('task_result', { task_id: id, status: 'success', result: { ok: true } });
      expect((await getTask(id)).state).toBe('completed');
    });

    it('does not re-send a held task the node says it is still running', async () => {
      const node = await registeredNode('apex-resume');
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      await node.nextOf('task_assign');
      node.ws.terminate();
      await until(
        () => client.get<Record<string, unknown>>('/v1/nodes/apex-resume'),
        (r) => r.body.data.status === 'offline',
      );
      const again = await registeredNode('apex-resume', { running_tasks: [{ task_id: id, attempt: 1 }] });
      await again.request('heartbeat', {});
      expect(again.frames.some((f) => f.type === 'task_assign')).toBe(false);
      await until(
        () => getTask(id),
        (task) => task.state === 'running',
      );
    });

    it("one task's result does not wait for another's write on the node channel either", async () => {
      const node = await registeredNode('apex-two', { capacity: 2 });
      const [a, b] = await Promise.all([
        client.post<Task>('/api/v1/tasks', { type: 'shell', data: { n: 'a' } }),
        client.post<Task>('/api/v1/tasks', { type: 'shell', data: { n: 'b' } }),
      ]).then((rs) => rs.map((r) => r.body.data.task_id));
      const assigned = [await node.nextOf('task_assign'), await node.nextOf('task_assign')];
      expect(assigned.map((f) => f.data.task_id).sort()).toEqual([a, b].sort());
      const blocker = t.db.createQueryRunner();
      await blocker.connect();
      await blocker.startTransaction();
      try {
        await blocker.query('SET LOCAL ROLE NONE');
        await blocker.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [a]);
        const [{ pid }] = (await blocker.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        const replyA = node.request('task_result', { task_id: a, status: 'success', result: { n: 'a' } }, 20_000);
        await until(
          async () =>
            (
              await t.db.query(
                `SELECT 1 FROM pg_locks w JOIN pg_locks h ON h.locktype = 'transactionid'
                   AND h.transactionid = w.transactionid AND h.granted AND h.pid = $1
                 WHERE NOT w.granted`,
                [pid],
              )
            ).length,
          (n) => n > 0,
        );
        const replyB = await node.request('task_result', { task_id: b, status: 'success', result: { n: 'b' } }, 5000);
        expect(replyB).toMatchObject({ type: 'ack', data: { success: true, task_id: b, status: 'completed' } });
        expect((await getTask(a)).state).not.toBe('completed');
        await blocker.commitTransaction();
        expect(await replyA).toMatchObject({ type: 'ack', data: { success: true, task_id: a, status: 'completed' } });
      } finally {
        if (blocker.isTransactionActive) await blocker.rollbackTransaction();
        await blocker.release();
      }
    });

    it('rejects a result for a stale attempt and changes nothing', async () => {
      const node = await registeredNode('apex-stale');
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      await node.nextOf('task_assign');
      const reply = await node.request('task_result', { task_id: id, attempt: 7, status: 'success', result: {} });
      expect(reply.type).toBe('error');
      expect(reply.data.code).toBe('STALE_ATTEMPT');
      expect(reply.data).toMatchObject({
        error_code: 'STALE_ATTEMPT',
        event: 'task_result',
        message: expect.any(String),
      });
      expect((await getTask(id)).state).not.toBe('completed');
    });

    it('keeps node log lines without a task and lists them at /api/v1/logs with filters', async () => {
      const node = await registeredNode('apex-logs');
      const other = await registeredNode('apex-logs-2');
      await node.request('log', { level: 'info', message: 'booted' });
      await node.request('log', { level: 'error', message: 'camera offline', data: { device: 'cam1' } });
      await other.request('log', { level: 'warn', message: 'low battery' });
      const all = await admin.get<{ logs: Record<string, unknown>[]; pagination: { total: number } }>('/api/v1/logs');
      expect(all.status).toBe(200);
      expect(all.body.data.logs.map((l) => l.message)).toEqual(['low battery', 'camera offline', 'booted']);
      expect(all.body.data.pagination.total).toBe(3);
      const severe = await admin.get<{ logs: Record<string, unknown>[] }>('/api/v1/logs?level=warn&node_id=apex-logs');
      expect(severe.body.data.logs).toEqual([
        expect.objectContaining({
          message: 'camera offline',
          level: 'error',
          source: 'node',
          data: { device: 'cam1' },
          task_id: null,
        }),
      ]);
      expect((await admin.get<{ logs: unknown[] }>('/api/v1/logs?source=hub')).body.data.logs).toEqual([]);
      const bad = await admin.get('/api/v1/logs?level=loud');
      expect(bad.status).toBe(400);
      expect(bad.body.error?.details).toMatchObject({ field: 'level' });
      expect((await client.get('/api/v1/logs')).status).toBe(403);
    });
  });

  describe('malformed frames', () => {
    const cases: [string, (s: ApexSocket) => void, string][] = [
      ['a binary frame', (s) => s.raw(Buffer.from([1, 2, 3]), true), 'frame'],
      ['text that is not JSON', (s) => s.raw('{"type": "heartbeat"'), 'frame'],
      ['a JSON array', (s) => s.raw('[1,2]'), 'frame'],
      ['a JSON string', (s) => s.raw('"hello"'), 'frame'],
      ['no type', (s) => s.raw(JSON.stringify({ data: {} })), 'type'],
      ['a numeric type', (s) => s.raw(JSON.stringify({ type: 5 })), 'type'],
      ['an object id', (s) => s.raw(JSON.stringify({ type: 'heartbeat', id: { x: 1 } })), 'id'],
      ['an unknown type', (s) => s.send('make_coffee', {}), 'type'],
      ['node_register without node_id', (s) => s.send('node_register', { name: 'x' }), 'node_id'],
      ['node_register with a bad type', (s) => s.send('node_register', { node_id: 'x', type: 'robot' }), 'type'],
      ['node_register with data that is not an object', (s) => s.send('node_register', 'apex'), 'payload'],
      ['a frame over the size limit', (s) => s.send('log', { message: 'x'.repeat(5000) }), 'frame'],
    ];

    it.each(cases)('answers %s with an error frame and keeps the connection', async (_what, sendIt, field) => {
      const node = await connect(nodePath(t.keys.worker));
      sendIt(node);
      const error = await node.nextOf('error');
      expect(error.data).toMatchObject({ code: expect.stringMatching(/VALIDATION_ERROR|PAYLOAD_TOO_LARGE/) });
      expect(error.data.details ?? {}).toMatchObject({ field });
      expect(node.open).toBe(true);
      const pong = await node.request('ping');
      expect(pong.type).toBe('pong');
      // Nothing was registered by any of them.
      expect((await client.get<{ nodes: unknown[] }>('/v1/nodes')).body.data.nodes).toEqual([]);
    });

    it.each([
      [
        'task_progress with progress 150',
        'task_progress',
        (id: string) => ({ task_id: id, progress: 150 }),
        'progress',
      ],
      [
        'task_result with a task id that is not a UUID',
        'task_result',
        () => ({ task_id: 'task-1', status: 'success' }),
        'task_id',
      ],
      [
        'task_result with an unknown status',
        'task_result',
        (id: string) => ({ task_id: id, status: 'maybe' }),
        'status',
      ],
      ['log without a message', 'log', (id: string) => ({ task_id: id }), 'message'],
      ['an ack that names no assignment', 'ack', () => ({}), 'id'],
    ])('refuses %s from a registered node, answering the id, and changes nothing', async (_what, type, data, field) => {
      const node = await registeredNode('apex-bad');
      const id = (await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} })).body.data.task_id;
      await node.nextOf('task_assign');
      const before = await getTask(id);
      const reply = await node.request(type, data(id));
      expect(reply.type).toBe('error');
      expect(reply.data.details).toMatchObject({ field });
      const after = await getTask(id);
      expect(after).toMatchObject({ state: before.state, progress: before.progress, attempt: before.attempt });
      expect(node.open).toBe(true);
    });

    it('refuses reports before registration', async () => {
      const node = await connect(nodePath(t.keys.worker));
      const reply = await node.request('heartbeat', {});
      expect(reply).toMatchObject({ type: 'error', data: { code: 'NOT_REGISTERED' } });
      expect(node.open).toBe(true);
    });
  });

  describe('log channel', () => {
    it('replays the last lines on connect and filters by query', async () => {
      const node = await registeredNode('apex-replay');
      await node.request('log', { level: 'info', message: 'before anyone listened' });
      await node.request('log', { level: 'error', message: 'an error before' });
      const all = await connect(logPath(t.keys.admin));
      await all.nextOf('log', (f) => f.data.message === 'before anyone listened');
      const errors = await connect(logPath(t.keys.admin, '?level=error&node_id=apex-replay', 'log'));
      const replayed = await errors.nextOf('log');
      expect(replayed.data).toMatchObject({ message: 'an error before', level: 'error', node_id: 'apex-replay' });
      await node.request('log', { level: 'info', message: 'live info' });
      await node.request('log', { level: 'error', message: 'live error' });
      await all.nextOf('log', (f) => f.data.message === 'live info');
      const live = await errors.nextOf('log');
      expect(live.data.message).toBe('live error');
      expect(errors.frames.filter((f) => f.type === 'log').every((f) => f.data.level === 'error')).toBe(true);
    });

    it('accepts the deprecated /VCPlog path with a warning, refuses a bad filter, and stays listen-only', async () => {
      const old = await connect(logPath(t.keys.admin, '', 'VCPlog'));
      expect((await old.nextOf('warning')).data).toMatchObject({ code: 'DEPRECATED_PATH' });
      old.send('anything', {});
      expect((await old.nextOf('error')).data).toMatchObject({
        code: 'VALIDATION_ERROR',
        error_code: 'VALIDATION_ERROR',
        message: 'The log channel is listen-only',
      });
      expect(old.open).toBe(true);
      expect((await ApexSocket.refusal(logPath(t.keys.admin, '?level=loud'))).status).toBe(400);
    });

    it("carries the hub's own warnings", async () => {
      const logs = await connect(logPath(t.keys.admin, '?source=hub'));
      await connect(nodePath(t.keys.worker, 'vcp-distributed-server'));
      const line = await logs.nextOf('log');
      expect(line.data).toMatchObject({ source: 'hub', level: 'warn' });
      expect(String(line.data.message)).toContain('deprecated path /vcp-distributed-server');
    });

    it('shows a node that went away holding a task as an alert line', async () => {
      const node = await registeredNode('apex-gone');
      await client.post<Task>('/api/v1/tasks', { type: 'shell', data: {} });
      await node.nextOf('task_assign');
      const alerts = await connect(logPath(t.keys.admin, '?source=node&level=warn'));
      node.ws.terminate();
      const line: ApexFrame = await alerts.nextOf('log', (f) => f.data.node_id === 'apex-gone');
      expect(String(line.data.message)).toContain('holding 1 task');
    });
  });
});
