import { Dispatcher } from '../../src/modules/dispatch/dispatcher.service.js';
import { NodeLiveness } from '../../src/modules/dispatch/node-liveness.service.js';
import { jest } from '@jest/globals';
import { HubInstancesRepository } from '../../src/modules/nodes/hub-instances.repository.js';
import { HubInstances } from '../../src/modules/nodes/hub-instances.service.js';
import { NodesService } from '../../src/modules/nodes/nodes.service.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { waitFor } from '../support/seed-devices.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

describe('devices over Socket.IO: registration, push dispatch, results', () => {
  let t: TestApp;
  let client: Api;
  let admin: Api;
  const devices: TestDevice[] = [];
  const device = (key?: string): TestDevice => {
    const d = new TestDevice(t.url, key ?? t.keys.worker);
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    t = await startTestApp({
      NODE_RECONNECT_GRACE_MS: '300',
      NODE_LIVENESS_TICK_MS: '600000',
      RETRY_BACKOFF_BASE_MS: '1',
      RETRY_BACKOFF_CAP_MS: '2',
    });
    client = apiClient(t, t.keys.client);
    admin = apiClient(t, t.keys.admin);
  });
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(() => t.close());

  const task = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;

  it('seed 004 flow: device_register → register_success, new_task, task_progress, task_result → completed', async () => {
    const d = device();
    const reg = await d.register('android_001', {
      device_info: { type: 'android', version: '13', app_version: '1.0.0' },
    });
    expect(reg).toMatchObject({ device_id: 'android_001', message: '注册成功', held_tasks: [] });
    expect(typeof reg.server_time).toBe('string');

    const created = await client.post<Task>('/api/v1/tasks', {
      type: 'DELIST',
      data: { product_ids: ['123', '456'], action: 'delist' },
    });
    const assigned = await d.next('new_task');
    expect(assigned).toMatchObject({
      type: 'new_task',
      task_id: created.body.data.task_id,
      task_type: 'DELIST',
      data: { product_ids: ['123', '456'], action: 'delist' },
      timeout: 1800,
      attempt: 1,
    });
    expect((await task(created.body.data.task_id)).state).toBe('dispatched');

    const progressAck = await d.request('task_progress', {
      task_id: assigned.task_id,
      progress: 60,
      message: '正在处理第2个商品...',
    });
    expect(progressAck).toMatchObject({ success: true, status: 'running', progress: 60 });
    const resultAck = await d.request('task_result', {
      task_id: assigned.task_id,
      result: {
        success: true,
        processed_count: 3,
        failed_count: 0,
        execution_time: 45.2,
        message: '下架完成',
        data: { details: ['商品123已下架'] },
      },
    });
    expect(resultAck).toMatchObject({ success: true, status: 'completed' });
    const done = await task(created.body.data.task_id);
    expect(done).toMatchObject({
      state: 'completed',
      node_id: 'android_001',
      progress: 100,
      result: { processed_count: 3, message: '下架完成' },
    });
  });

  it('Apex vocabulary: node_register → task_assign → task_result', async () => {
    const n = device();
    n.socket.emit('node_register', {
      nodeId: 'companion-1',
      name: 'Companion',
      capabilities: ['summarize'],
      persona: { tone: 'warm' },
      version: '2.1',
    });
    expect(await n.next('register_success')).toMatchObject({ node_id: 'companion-1' });
    const created = await client.post<Task>('/api/v1/tasks', { type: 'summarize', data: { text: 'long' } });
    const assign = await n.next('task_assign');
    expect(assign).toMatchObject({
      type: 'task_assign',
      task_id: created.body.data.task_id,
      action: 'summarize',
      payload: { text: 'long' },
      node_id: 'companion-1',
    });
    await n.request('task_result', { task_id: assign.task_id, attempt: assign.attempt, result: { summary: 'short' } });
    expect(await task(created.body.data.task_id)).toMatchObject({ state: 'completed', result: { summary: 'short' } });
    const node = await admin.get<{ vocabulary: string; version: string; capabilities: string[] }>(
      '/api/v1/nodes/companion-1',
    );
    expect(node.body.data).toMatchObject({ vocabulary: 'node', version: '2.1', capabilities: ['summarize'] });
  });

  it('respects capacity: busy at capacity, online again when a result frees a slot', async () => {
    const d = device();
    await d.register('cap-2', { capacity: 2 });
    const ids = [];
    for (let i = 0; i < 3; i++)
      ids.push((await client.post<Task>('/api/v1/tasks', { prompt: `c${i}` })).body.data.task_id);
    const first = await d.next('new_task');
    const second = await d.next('new_task', (x) => x.task_id !== first.task_id);
    await t.app.get(Dispatcher).runRound();
    expect(d.received.filter((r) => r.event === 'new_task')).toHaveLength(0);
    const busy = await admin.get<{ status: string; running: number }>('/api/v1/nodes/cap-2');
    expect(busy.body.data).toMatchObject({ status: 'busy', running: 2 });
    const pending = (await Promise.all(ids.map(task))).filter((x) => x.state === 'pending');
    expect(pending).toHaveLength(1);

    await d.request('task_result', { task_id: first.task_id, result: { success: true } });
    const third = await d.next('new_task');
    expect(third.task_id).toBe(pending[0].task_id);
    await d.request('task_result', { task_id: second.task_id, result: { success: true } });
    await d.request('task_result', { task_id: third.task_id, result: { success: true } });
    const online = await admin.get<{ status: string; running: number }>('/api/v1/nodes/cap-2');
    expect(online.body.data).toMatchObject({ status: 'online', running: 0 });
  });

  it('targeted dispatch goes only to the asked-for device', async () => {
    const a = device();
    const b = device();
    await a.register('dev-a', { capacity: 5 });
    await b.register('dev-b', { capacity: 5 });
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'for b', target_node_id: 'dev-b' });
    const got = await b.next('new_task');
    expect(got.task_id).toBe(created.body.data.task_id);
    expect(a.received.some((r) => r.event === 'new_task')).toBe(false);
  });

  it('tags and capabilities decide eligibility', async () => {
    const plain = device();
    const gpu = device();
    await plain.register('plain', { capacity: 5, capabilities: ['COLLECT'] });
    await gpu.register('gpu', { capacity: 5, tags: ['gpu'] });
    const needsGpu = await client.post<Task>('/api/v1/tasks', { type: 'render', prompt: 'x', required_tags: ['gpu'] });
    expect((await gpu.next('new_task')).task_id).toBe(needsGpu.body.data.task_id);
    const collect = await client.post<Task>('/api/v1/tasks', {
      type: 'COLLECT',
      data: { target_url: 'https://example.com' },
    });
    const got = await Promise.race([plain.next('new_task'), gpu.next('new_task')]);
    expect(got.task_id).toBe(collect.body.data.task_id);
  });

  it('a stale result is rejected with STALE_ATTEMPT, logged, and changes nothing; a duplicate result is harmless', async () => {
    const d = device();
    await d.register('stale-dev');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 's' });
    const assigned = await d.next('new_task');
    const stale = await d.request('task_result', { task_id: assigned.task_id, attempt: 99, result: { success: true } });
    expect(stale).toMatchObject({ success: false, error: { code: 'STALE_ATTEMPT' } });
    expect(await d.next('error', (e) => e.code === 'STALE_ATTEMPT')).toMatchObject({ event: 'task_result' });
    expect((await task(created.body.data.task_id)).state).toBe('dispatched');
    const logs = await client.get<{ logs: { type: string }[] }>(
      `/api/v1/tasks/${created.body.data.task_id}/logs?level=warn`,
    );
    expect(logs.body.data.logs.map((l) => l.type)).toContain('stale_report_rejected');

    expect(
      await d.request('task_result', { task_id: assigned.task_id, attempt: 1, result: { success: true, n: 1 } }),
    ).toMatchObject({ success: true });
    // The same result again (a resend after a lost ack) is answered as done; a different one is a conflict.
    const again = await d.request('task_result', {
      task_id: assigned.task_id,
      attempt: 1,
      result: { success: true, n: 1 },
    });
    expect(again).toMatchObject({ success: true, status: 'completed' });
    const dup = await d.request('task_result', {
      task_id: assigned.task_id,
      attempt: 1,
      result: { success: true, n: 2 },
    });
    expect(dup).toMatchObject({ success: false, error: { code: 'CONFLICT' } });
    expect((await task(created.body.data.task_id)).result).toMatchObject({ n: 1 });
  });

  it('another device cannot report on a task it does not hold', async () => {
    const holder = device();
    const intruder = device();
    await holder.register('holder', { capacity: 1 });
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'mine', target_node_id: 'holder' });
    await holder.next('new_task');
    await intruder.register('intruder');
    const r = await intruder.request('task_result', { task_id: created.body.data.task_id, result: { success: true } });
    expect(r).toMatchObject({ success: false, error: { code: 'STALE_ATTEMPT' } });
    expect((await task(created.body.data.task_id)).state).toBe('dispatched');
  });

  it('a failed result is retried on the retry policy and can go to the device again', async () => {
    const d = device();
    await d.register('flaky');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'f', max_retries: 1 });
    const first = await d.next('new_task');
    await d.request('task_result', { task_id: first.task_id, result: { success: false, message: '下架失败' } });
    const second = await d.next('new_task');
    expect(second).toMatchObject({ task_id: created.body.data.task_id, attempt: 2 });
    await d.request('task_result', { task_id: second.task_id, success: false, error: 'still failing' });
    expect(await task(created.body.data.task_id)).toMatchObject({
      state: 'failed',
      retry_count: 1,
      error: { message: 'still failing' },
    });
  });

  it('cancel reaches the device holding the task', async () => {
    const d = device();
    await d.register('cancel-me');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'long job' });
    await d.next('new_task');
    await client.post(`/api/v1/tasks/${created.body.data.task_id}/cancel`, { reason: 'user changed mind' });
    expect(await d.next('cancel_task')).toMatchObject({
      type: 'cancel_task',
      task_id: created.body.data.task_id,
      reason: 'user changed mind',
    });
    const late = await d.request('task_result', { task_id: created.body.data.task_id, result: { success: true } });
    expect(late).toMatchObject({ success: false, error: { code: 'CONFLICT' } });
  });

  it('a device dropped mid-task: after the grace its task goes to another device and completes once', async () => {
    const a = device();
    await a.register('drop-a');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'survive' });
    const first = await a.next('new_task');
    const b = device();
    await b.register('drop-b');
    a.close();
    // Within the grace nothing moves.
    const liveness = t.app.get(NodeLiveness);
    expect((await liveness.check()).released).toBe(0);
    await new Promise((r) => setTimeout(r, 400)); // NODE_RECONNECT_GRACE_MS = 300 for this suite
    expect((await liveness.check()).released).toBe(1);
    const second = await b.next('new_task');
    expect(second).toMatchObject({ task_id: first.task_id, attempt: 2 });
    await b.request('task_result', { task_id: second.task_id, attempt: 2, result: { success: true, by: 'b' } });
    const done = await task(created.body.data.task_id);
    expect(done).toMatchObject({ state: 'completed', node_id: 'drop-b', result: { by: 'b' } });
    const completions = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = 'completed'`,
      [first.task_id],
    );
    expect(completions[0].n).toBe(1);
  });

  it('register_success then the ack (one write since W4), and heartbeat_ack then the ack: same order and data', async () => {
    const d = device();
    await new Promise<void>((ok) => d.socket.once('connect', () => ok()));
    const order: string[] = [];
    d.socket.onAny((event: string) => order.push(event));
    const ack = (await d.socket.emitWithAck('device_register', { device_id: 'corked-1' })) as Record<string, unknown>;
    order.push('ack');
    const event = await d.next('register_success');
    expect(order).toEqual(['register_success', 'ack']);
    expect(ack).toMatchObject({ success: true, ...event });
    order.length = 0;
    const beat = (await d.socket.emitWithAck('heartbeat', {})) as Record<string, unknown>;
    order.push('ack');
    expect(order).toEqual(['heartbeat_ack', 'ack']);
    expect(typeof beat.server_time).toBe('string');
    // The connection still carries what comes next (the transport is writable again).
    const created = await client.post<Task>('/api/v1/tasks', { type: 'DELIST', data: {} });
    expect(await d.next('new_task')).toMatchObject({ task_id: created.body.data.task_id });
  });

  it('a reconnect within the grace keeps the task, and register_success lists it', async () => {
    const a = device();
    await a.register('flaky-net');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'keep' });
    const assigned = await a.next('new_task');
    a.close();
    const again = device();
    const reg = await again.register('flaky-net');
    expect(reg.held_tasks).toEqual([{ task_id: created.body.data.task_id, attempt: 1, status: 'dispatched' }]);
    // A seed device reports nothing it runs, so every held task is sent to it again, same attempt.
    expect(await again.next('new_task')).toMatchObject({ task_id: assigned.task_id, attempt: 1 });
    expect((await t.app.get(NodeLiveness).check()).released).toBe(0);
    await again.request('task_result', { task_id: assigned.task_id, attempt: 1, result: { success: true } });
    expect((await task(created.body.data.task_id)).state).toBe('completed');
  });

  it('a result sent before the registration (socket.io-client flushes its buffer first) is applied once registered, and that task is not sent again', async () => {
    const a = device();
    await a.register('buffered', { capacity: 2 });
    const done = (await client.post<Task>('/api/v1/tasks', { prompt: 'finished offline' })).body.data.task_id;
    const open = (await client.post<Task>('/api/v1/tasks', { prompt: 'still to do' })).body.data.task_id;
    await a.next('new_task');
    await a.next('new_task');
    a.close();
    const again = device();
    await again.connected();
    // What a reconnecting seed device sends: its buffered result, then device_register from its connect handler.
    const resultAck = again.request('task_result', { task_id: done, result: { success: true, offline: true } });
    await again.register('buffered', { capacity: 2 });
    expect(await resultAck).toMatchObject({ success: true, status: 'completed' });
    expect(await again.next('new_task')).toMatchObject({ task_id: open, attempt: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(again.received.filter((r) => r.event === 'new_task')).toEqual([]); // the finished one was not sent again
    expect(await task(done)).toMatchObject({ state: 'completed', result: { offline: true } });
  });

  it('re-registering an id replaces the old socket and never duplicates the node', async () => {
    const old = device();
    await old.register('dup-id');
    const fresh = device();
    await fresh.register('dup-id');
    expect(await old.next('error', (e) => e.code === 'REPLACED')).toMatchObject({
      code: 'REPLACED',
      error_code: 'REPLACED',
    });
    await new Promise<void>((resolve) =>
      old.socket.connected ? old.socket.once('disconnect', () => resolve()) : resolve(),
    );
    const nodes = await t.db.query(`SELECT id, status FROM nodes WHERE id = 'dup-id'`);
    expect(nodes).toEqual([{ id: 'dup-id', status: 'online' }]);
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'to the fresh one' });
    expect((await fresh.next('new_task')).task_id).toBe(created.body.data.task_id);
  });

  it('heartbeat → heartbeat_ack; a device silent for an hour on a live socket stays online and connected', async () => {
    const d = device();
    await d.register('beating');
    d.socket.emit('heartbeat', { device_id: 'beating', timestamp: '2025-09-17T14:30:00' });
    expect(typeof (await d.next('heartbeat_ack')).server_time).toBe('string');
    const wrong = await d.request('heartbeat', { device_id: 'someone-else' });
    expect(wrong).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'device_id' } },
    });
    await t.app.get(NodesService).flushHeartbeats();
    await t.db.query(`UPDATE nodes SET last_heartbeat_at = now() - interval '1 hour' WHERE id = 'beating'`);
    await t.app.get(NodeLiveness).check();
    await t.app.get(HubInstances).tick();
    const node = await admin.get<{ status: string }>('/api/v1/nodes/beating');
    expect(node.body.data.status).toBe('online');
    expect(d.socket.connected).toBe(true);
    expect(d.received.filter((r) => r.event === 'error' && r.data.code === 'DISCONNECTED')).toEqual([]);
  });

  it('a device that registers while the hub reconciles its connections stays online', async () => {
    // The race CI once hit with 200 devices: the hub lists its live connections, a device
    // connects and registers, then the reconcile runs. The device was not in the list, but
    // it registered after it was taken, so it must not be set offline.
    const repo = t.app.get(HubInstancesRepository);
    const original = repo.reconcileOwn.bind(repo);
    let late: TestDevice | undefined;
    const spy = jest.spyOn(repo, 'reconcileOwn').mockImplementationOnce(async (...args) => {
      // The list (args[1]) is taken by now: this device connects after it.
      late = device();
      await late.register('late-comer');
      expect(args[1]).not.toContain(late.socket.id);
      return original(...args);
    });
    try {
      const offline = await t.app.get(HubInstances).tick();
      expect(offline).not.toContain('late-comer');
    } finally {
      spy.mockRestore();
    }
    expect((await admin.get<{ status: string }>('/api/v1/nodes/late-comer')).body.data.status).toBe('online');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'for the late-comer' });
    expect((await late!.next('new_task')).task_id).toBe(created.body.data.task_id);
  });

  it("one task's result does not wait for another's write: a locked row holds up only its own task", async () => {
    const d = device();
    await d.register('two-at-once', { capacity: 2 });
    const [a, b] = await Promise.all([
      client.post<Task>('/api/v1/tasks', { prompt: 'a' }),
      client.post<Task>('/api/v1/tasks', { prompt: 'b' }),
    ]).then((rs) => rs.map((r) => r.body.data.task_id));
    const assigned = [await d.next('new_task'), await d.next('new_task')];
    expect(assigned.map((m) => m.task_id).sort()).toEqual([a, b].sort());
    // Another session holds task a's row: its completion blocks in the database.
    const blocker = await t.db.createQueryRunner();
    await blocker.connect();
    await blocker.startTransaction();
    try {
      await blocker.query('SET LOCAL ROLE NONE');
      await blocker.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [a]);
      const [{ pid }] = (await blocker.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
      const ackA = d.request('task_result', { task_id: a, result: { success: true, n: 'a' } }, 20_000);
      await waitFor(
        "task a's completion waiting for the lock",
        async () => {
          // Someone waits on the blocker's transaction: that is task a's completion.
          const rows: unknown[] = await t.db.query(
            `SELECT 1 FROM pg_locks w JOIN pg_locks h ON h.locktype = 'transactionid'
               AND h.transactionid = w.transactionid AND h.granted AND h.pid = $1
             WHERE NOT w.granted`,
            [pid],
          );
          return rows.length > 0;
        },
        5000,
        20,
      );
      // Task b's result, sent after a's on the same socket, is written and acknowledged meanwhile.
      const ackB = await d.request('task_result', { task_id: b, result: { success: true, n: 'b' } }, 5000);
      expect(ackB).toMatchObject({ success: true, task_id: b, status: 'completed' });
      expect((await task(a)).state).not.toBe('completed');
      await blocker.commitTransaction();
      expect(await ackA).toMatchObject({ success: true, task_id: a, status: 'completed' });
    } finally {
      if (blocker.isTransactionActive) await blocker.rollbackTransaction();
      await blocker.release();
    }
    expect(await task(a)).toMatchObject({ state: 'completed', result: { success: true, n: 'a' } });
  });

  it('drain stops new tasks; undrain resumes', async () => {
    const d = device();
    await d.register('drainable', { capacity: 3 });
    expect((await admin.post<{ status: string }>('/api/v1/nodes/drainable/drain')).body.data.status).toBe('draining');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'wait' });
    await t.app.get(Dispatcher).runRound();
    expect((await task(created.body.data.task_id)).state).toBe('pending');
    expect((await admin.post<{ status: string }>('/api/v1/nodes/drainable/undrain')).body.data.status).toBe('online');
    expect((await d.next('new_task')).task_id).toBe(created.body.data.task_id);
  });

  it('DELETE /nodes/:id disconnects it and re-queues its tasks', async () => {
    const d = device();
    await d.register('doomed');
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'orphan', max_retries: 2 });
    await d.next('new_task');
    const res = await admin.delete('/api/v1/nodes/doomed');
    expect(res.status).toBe(200);
    expect(await d.next('error', (e) => e.code === 'DISCONNECTED')).toBeTruthy();
    expect(await task(created.body.data.task_id)).toMatchObject({
      state: 'pending',
      retry_count: 1,
      node_id: null,
      error: { code: 'NODE_LOST', node_id: 'doomed' },
    });
    expect((await admin.get('/api/v1/nodes/doomed')).status).toBe(404);
  });

  it('lists nodes with filters, and shows a node with its tasks and counts', async () => {
    const a = device();
    const b = device();
    await a.register('list-a', { tags: ['android'], capacity: 1 });
    await b.register('list-b', { tags: ['ios'], capacity: 4 });
    const created = await client.post<Task>('/api/v1/tasks', { prompt: 'x', target_node_id: 'list-a' });
    await a.next('new_task');
    const busy = await admin.get<{ nodes: { node_id: string }[]; pagination: { total: number } }>(
      '/api/v1/nodes?status=busy',
    );
    expect(busy.body.data.nodes.map((n) => n.node_id)).toEqual(['list-a']);
    const ios = await admin.get<{ nodes: { node_id: string }[] }>('/api/v1/nodes?tag=ios');
    expect(ios.body.data.nodes.map((n) => n.node_id)).toEqual(['list-b']);
    const all = await admin.get<{ pagination: { total: number } }>('/api/v1/nodes?limit=1');
    expect(all.body.data.pagination).toMatchObject({ total: 2, has_more: true });
    const detail = await admin.get<{ tasks: Task[]; stats: { held: number } }>('/api/v1/nodes/list-a');
    expect(detail.body.data.tasks.map((x) => x.task_id)).toEqual([created.body.data.task_id]);
    expect(detail.body.data.stats.held).toBe(1);
    expect((await admin.get('/api/v1/nodes?status=sleepy')).body.error?.details?.field).toBe('status');
  });
});
