import { io, type Socket } from 'socket.io-client';
import { type Api, apiClient, type Task } from '../support/api.js';
import { ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// Issue 15, second part (docs/tenants.md, "Sockets, streams and dispatch"): devices, pull
// workers and every stream of one tenant never meet another tenant's tasks.
describe('tenants: dispatch and stream isolation on the socket channels', () => {
  let t: TestApp;
  let global: Api;
  const keys: Record<string, { admin: string; client: string; worker: string }> = {};
  const api = (tenant: string, role: 'admin' | 'client' | 'worker'): Api => apiClient(t, keys[tenant][role]);
  const closers: { close(): void }[] = [];
  const ws = (path: string): string => `${t.url.replace('http', 'ws')}${path}`;

  const device = async (tenant: string, id: string): Promise<TestDevice> => {
    const d = new TestDevice(t.url, keys[tenant].worker);
    closers.push(d);
    expect(await d.register(id)).toMatchObject({ device_id: id });
    return d;
  };

  /** A device that finishes every task it is given, and remembers them. */
  const worker = (d: TestDevice, got: Record<string, unknown>[]): void => {
    d.socket.on('new_task', (m: Record<string, unknown>) => {
      got.push(m);
      d.socket.emit('task_result', { task_id: m.task_id, result: { success: true, message: 'done' } });
    });
  };

  const submit = async (tenant: string, n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await api(tenant, 'client').post<Task>('/api/v1/tasks', { type: 'job', data: { tenant, i } });
      expect(res.status).toBe(201);
      ids.push(res.body.data.task_id);
    }
    return ids;
  };

  async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const stateOf = async (tenant: string, id: string): Promise<string> =>
    (await api(tenant, 'client').get<Task>(`/api/v1/tasks/${id}`)).body.data.state;

  async function events(key: string, extra: Record<string, string> = {}): Promise<{ socket: Socket; got: string[] }> {
    const socket: Socket = io(`${t.url}/events`, {
      auth: { token: key, ...extra },
      transports: ['websocket'],
      forceNew: true,
    });
    closers.push({ close: () => socket.close() });
    const got: string[] = [];
    socket.onAny((event: string, data: { task_id?: string; node_id?: string }) =>
      got.push(`${event}:${data?.task_id ?? data?.node_id ?? ''}`),
    );
    await new Promise<void>((ok, fail) => {
      socket.on('connect', () => ok());
      socket.on('connect_error', fail);
    });
    const ack = (await socket.timeout(5000).emitWithAck('subscribe_tasks', { all: true })) as { success: boolean };
    expect(ack.success).toBe(true);
    return { socket, got };
  }

  async function apex(url: string): Promise<ApexSocket> {
    const s = await ApexSocket.open(url);
    closers.push(s);
    return s;
  }

  beforeAll(async () => {
    t = await startTestApp({ NODE_RECONNECT_GRACE_MS: '300', METRICS_UPDATE_INTERVAL_MS: '200' });
    global = apiClient(t, t.keys.admin);
    for (const tenant of ['tenant-a', 'tenant-b']) {
      expect((await global.post('/api/v1/tenants', { id: tenant, name: tenant })).status).toBe(201);
      const made: Record<string, string> = {};
      for (const role of ['admin', 'client', 'worker']) {
        const res = await global.post<{ key: string }>('/api/v1/api-keys', {
          name: `${tenant}-${role}`,
          roles: [role],
          tenant_id: tenant,
        });
        expect(res.status).toBe(201);
        made[role] = res.body.data.key;
      }
      keys[tenant] = made as (typeof keys)[string];
    }
  });
  afterEach(async () => {
    closers.splice(0).forEach((c) => c.close());
    await truncate(t.db, 'task_events, tasks, nodes, node_logs');
  });
  afterAll(() => t.close());

  it("dispatch: each tenant's devices get only its own tasks, and every task completes", async () => {
    const gotA: Record<string, unknown>[] = [];
    const gotB: Record<string, unknown>[] = [];
    worker(await device('tenant-a', 'dev-a1'), gotA);
    worker(await device('tenant-a', 'dev-a2'), gotA);
    worker(await device('tenant-b', 'dev-b1'), gotB);
    const idsA = await submit('tenant-a', 8);
    const idsB = await submit('tenant-b', 8);
    for (const id of idsA)
      await until(
        () => stateOf('tenant-a', id),
        (s) => s === 'completed',
      );
    for (const id of idsB)
      await until(
        () => stateOf('tenant-b', id),
        (s) => s === 'completed',
      );
    expect(gotA.map((m) => m.task_id).sort()).toEqual([...idsA].sort());
    expect(gotB.map((m) => m.task_id).sort()).toEqual([...idsB].sort());
    // The rows say the same: A's tasks ran on A's devices only.
    const rows: { tenant_id: string; node_tenant: string }[] = await t.db.query(
      `SELECT t.tenant_id, n.tenant_id AS node_tenant FROM tasks t JOIN nodes n ON n.id = t.node_id`,
    );
    expect(rows).toHaveLength(16);
    expect(rows.every((r) => r.tenant_id === r.node_tenant)).toBe(true);
  });

  it("a task targeted at another tenant's node is not dispatched to it", async () => {
    const gotB: Record<string, unknown>[] = [];
    worker(await device('tenant-b', 'dev-b-target'), gotB);
    const res = await api('tenant-a', 'client').post<Task>('/api/v1/tasks', {
      type: 'job',
      data: {},
      target_node_id: 'dev-b-target',
    });
    expect(res.status).toBe(201);
    await new Promise((r) => setTimeout(r, 500));
    expect(await stateOf('tenant-a', res.body.data.task_id)).toBe('pending');
    expect(gotB).toEqual([]);
  });

  it('a node id held by another tenant is refused (CONFLICT, NODE_ID_TAKEN) and nothing changes', async () => {
    const a = await device('tenant-a', 'shared-id');
    const row = (): Promise<unknown[]> =>
      t.db.query(`SELECT tenant_id, socket_id, status FROM nodes WHERE id = 'shared-id'`);
    const before = await row();
    const b = new TestDevice(t.url, keys['tenant-b'].worker);
    closers.push(b);
    const ack = await b.request('device_register', { device_id: 'shared-id' });
    expect(ack).toMatchObject({
      success: false,
      error: { code: 'CONFLICT', event: 'device_register', details: { field: 'device_id', reason: 'NODE_ID_TAKEN' } },
    });
    expect(await b.next('error')).toMatchObject({ code: 'CONFLICT', details: { reason: 'NODE_ID_TAKEN' } });
    // The Apex node channel refuses it the same way.
    const node = await apex(ws(`/abp-distributed-server/VCP_Key=${encodeURIComponent(keys['tenant-b'].worker)}`));
    const reply = await node.request('node_register', { node_id: 'shared-id', name: 'intruder' });
    expect(reply).toMatchObject({ type: 'error', data: { code: 'CONFLICT', details: { reason: 'NODE_ID_TAKEN' } } });
    const after = await row();
    expect(after).toEqual(before);
    expect(after[0]).toMatchObject({ tenant_id: 'tenant-a', status: 'online' });
    expect(a.socket.connected).toBe(true);
    // B's API does not see the node; A's does, still online.
    expect((await api('tenant-b', 'admin').get('/api/v1/nodes/shared-id')).status).toBe(404);
    expect((await api('tenant-a', 'admin').get<{ status: string }>('/api/v1/nodes/shared-id')).body.data.status).toBe(
      'online',
    );
    // A's tasks still reach A's device.
    const [id] = await submit('tenant-a', 1);
    expect(await a.next('new_task')).toMatchObject({ task_id: id });
  });

  it("a pull worker of B never claims A's task; A's worker does", async () => {
    const [id] = await submit('tenant-a', 1);
    const workerB = api('tenant-b', 'worker');
    expect((await workerB.get('/api/v1/tasks/next?worker_id=w-b')).body.data).toBeNull();
    expect((await workerB.post(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w-b' })).status).toBe(404);
    expect(await stateOf('tenant-a', id)).toBe('pending');
    const claimed = await api('tenant-a', 'worker').get<Task>('/api/v1/tasks/next?worker_id=w-a');
    expect(claimed.body.data).toMatchObject({ task_id: id });
  });

  it("streams: /events, /ws and the log channel of B hear nothing of A's task; A's and the global admin's do", async () => {
    const evA = await events(keys['tenant-a'].client);
    const evB = await events(keys['tenant-b'].client);
    const evGlobal = await events(t.keys.admin);
    const evGlobalForB = await events(t.keys.admin, { tenant_id: 'tenant-b' });
    const wsA = await apex(ws(`/ws?token=${keys['tenant-a'].client}`));
    const wsB = await apex(ws(`/ws?token=${keys['tenant-b'].client}`));
    const logA = await apex(ws(`/ABPlog/VCP_Key=${encodeURIComponent(keys['tenant-a'].admin)}`));
    const logB = await apex(ws(`/ABPlog/VCP_Key=${encodeURIComponent(keys['tenant-b'].admin)}`));
    const logGlobal = await apex(ws(`/ABPlog/VCP_Key=${encodeURIComponent(t.keys.admin)}`));

    const node = await apex(ws(`/abp-distributed-server/VCP_Key=${encodeURIComponent(keys['tenant-a'].worker)}`));
    expect((await node.request('node_register', { node_id: 'apex-a', name: 'A' })).type).toBe('register_success');
    const created = await api('tenant-a', 'client').post<Task>('/api/v1/tasks', {
      type: 'shell',
      data: {},
      max_retries: 0,
    });
    const id = created.body.data.task_id;
    await node.nextOf('task_assign');
    expect((await node.request('log', { task_id: id, message: 'secret of A' })).data).toMatchObject({ success: true });
    expect((await node.request('notification', { message: 'note of A', task_id: id })).data).toMatchObject({
      success: true,
    });
    await node.request('task_result', { task_id: id, status: 'failed', error: 'boom' });

    // A's listeners hear the whole story (the failure is also an alert).
    const heard = (s: ApexSocket, type: string, match: (d: Record<string, unknown>) => boolean): Promise<unknown> =>
      until(
        async () => s.frames.some((f) => f.type === type && match(f.data)),
        (yes) => yes,
      );
    await heard(wsA, 'notification', (d) => d.message === 'note of A');
    await heard(wsA, 'task_failed', (d) => d.taskId === id || d.task_id === id);
    await heard(wsA, 'alert', (d) => d.task_id === id);
    await heard(logA, 'log', (d) => d.message === 'secret of A');
    await heard(logA, 'log', (d) => d.task_id === id && d.source === 'task' && d.level === 'error');
    await heard(logGlobal, 'log', (d) => d.message === 'secret of A');
    await until(
      async () => evA.got,
      (g) => g.includes(`task_failed:${id}`) && g.includes(`alert:${id}`) && g.includes('node_online:apex-a'),
    );
    await until(
      async () => evGlobal.got,
      (g) => g.includes(`task_failed:${id}`) && g.includes(`alert:${id}`),
    );

    // A task of B afterwards reaches B: once B hears it, anything of A would have come before.
    const [idB] = await submit('tenant-b', 1);
    await heard(wsB, 'task_created', (d) => d.taskId === idB || d.task_id === idB);
    await until(
      async () => evB.got,
      (g) => g.includes(`task_created:${idB}`),
    );
    await until(
      async () => evGlobalForB.got,
      (g) => g.includes(`task_created:${idB}`),
    );
    await heard(logB, 'log', (d) => d.task_id === idB);
    const mentionsA = (text: string): boolean => text.includes(id) || text.includes('apex-a') || text.includes('of A');
    expect(wsB.frames.filter((f) => mentionsA(JSON.stringify(f)))).toEqual([]);
    expect(logB.frames.filter((f) => mentionsA(JSON.stringify(f)))).toEqual([]);
    expect(evB.got.filter(mentionsA)).toEqual([]);
    expect(evGlobalForB.got.filter(mentionsA)).toEqual([]);
    // Nor does a B client that asks for A's task by id.
    const ack = (await evB.socket.timeout(5000).emitWithAck('subscribe_tasks', { taskIds: [id] })) as {
      subscribed: string[];
    };
    expect(ack.subscribed).toEqual(expect.arrayContaining(['tasks:all', `task:${id}`]));
    await api('tenant-a', 'client').post(`/api/v1/tasks/${id}/retry`, {});
    await new Promise((r) => setTimeout(r, 300));
    expect(evB.got.filter(mentionsA)).toEqual([]);
  });

  it("a global admin's device acting for B (auth.tenant_id) registers into B and runs B's tasks only", async () => {
    const d = new TestDevice(t.url, t.keys.admin, { auth: { tenant_id: 'tenant-b' } });
    closers.push(d);
    expect(await d.register('global-for-b')).toMatchObject({ device_id: 'global-for-b' });
    const rows: { tenant_id: string }[] = await t.db.query(`SELECT tenant_id FROM nodes WHERE id = 'global-for-b'`);
    expect(rows).toEqual([{ tenant_id: 'tenant-b' }]);
    const [idA] = await submit('tenant-a', 1);
    const [idB] = await submit('tenant-b', 1);
    expect(await d.next('new_task')).toMatchObject({ task_id: idB });
    await new Promise((r) => setTimeout(r, 300));
    expect(d.received.filter((m) => m.data?.task_id === idA)).toEqual([]);
    expect(await stateOf('tenant-a', idA)).toBe('pending');
  });

  it("metrics_update on /events counts each listener's own tenant only", async () => {
    await submit('tenant-a', 3);
    await submit('tenant-b', 1);
    const pendingSeenBy = async (key: string): Promise<number> => {
      const { socket } = await events(key);
      const update = new Promise<{ tasks: Record<string, number> }>((ok) => socket.once('metrics_update', ok));
      expect(((await socket.timeout(5000).emitWithAck('subscribe_metrics', {})) as { success: boolean }).success).toBe(
        true,
      );
      return (await update).tasks.pending;
    };
    expect(await pendingSeenBy(keys['tenant-a'].client)).toBe(3);
    expect(await pendingSeenBy(keys['tenant-b'].client)).toBe(1);
    expect(await pendingSeenBy(t.keys.admin)).toBe(4); // the global admin: the whole hub
  });

  it('a socket naming a tenant it does not belong to is refused with TENANT_NOT_FOUND', async () => {
    const device = new TestDevice(t.url, keys['tenant-b'].worker, { auth: { tenant_id: 'tenant-a' } });
    closers.push(device);
    expect(await device.next('error')).toMatchObject({ code: 'TENANT_NOT_FOUND', event: 'connect' });
    const refused = await ApexSocket.refusal(ws(`/ws?token=${keys['tenant-b'].client}&tenant_id=tenant-a`));
    expect(refused.status).toBe(404);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'TENANT_NOT_FOUND' });
    const unknown = await ApexSocket.refusal(ws(`/ws?token=${t.keys.admin}&tenant_id=nope`));
    expect(unknown.status).toBe(404);
  });
});
