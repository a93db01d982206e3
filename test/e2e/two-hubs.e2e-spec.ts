import pg from 'pg';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { apiClient, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { HubProcess } from '../support/hub-process.js';
import type { TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

// Two hub processes share one PostgreSQL database (the queue) and Redis (the Socket.IO adapter).
// It needs Redis and the built app; without them it is skipped, saying why.
const skipReason = !process.env.REDIS_URL
  ? 'REDIS_URL is not set'
  : !HubProcess.canRun()
    ? 'dist/src/main.js is missing (run npm run build)'
    : null;
if (skipReason) process.stdout.write(`\n[two-hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('two hub processes sharing PostgreSQL and Redis', () => {
  let a: HubProcess;
  let b: HubProcess;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    const databaseUrl = await createEmptyDatabase('two_hubs');
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: process.env.REDIS_URL as string, AUTH_REQUIRED: 'false' };
    a = await new HubProcess(env).start();
    b = await new HubProcess(env).start();
    await db.query('TRUNCATE task_events, tasks, nodes CASCADE');
    await db.end();
  }, 60_000);

  afterAll(async () => {
    devices.forEach((d) => d.close());
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    if (codes.some((c) => c !== 0)) process.stdout.write(`\n[two-hubs] hub output:\n${a.output.slice(-3000)}\n`);
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  const hub = (h: HubProcess) => apiClient({ url: h.url } as TestApp, undefined);

  it('a device on A receives a task submitted on B, and a cancel issued on B reaches it', async () => {
    const d = new TestDevice(a.url);
    devices.push(d);
    await d.register('cross-1');

    const created = await hub(b).post<Task>('/api/v1/tasks', { prompt: 'from B', target_node_id: 'cross-1' });
    expect(created.status).toBe(201);
    const assigned = await d.next('new_task');
    expect(assigned.task_id).toBe(created.body.data.task_id);

    const cancelled = await hub(b).post<Task>(`/api/v1/tasks/${created.body.data.task_id}/cancel`, {
      reason: 'stop from B',
    });
    expect(cancelled.status).toBe(200);
    expect(await d.next('cancel_task')).toMatchObject({ task_id: created.body.data.task_id, reason: 'stop from B' });
  });

  it('an /events subscriber and a /ws client on A see the progress of a task run through B', async () => {
    const sock = io(`${a.url}/events`, { transports: ['websocket'], forceNew: true });
    const ws = new WebSocket(`${a.url.replace('http', 'ws')}/ws`);
    const viaWs: { type: string; data: { taskId: string; progress?: number } }[] = [];
    ws.on('message', (raw) => viaWs.push(JSON.parse(raw.toString()) as { type: string; data: { taskId: string } }));
    await Promise.all([
      new Promise<void>((r) => sock.once('connect', () => r())),
      new Promise<void>((r) => ws.once('open', () => r())),
    ]);
    try {
      const d = new TestDevice(b.url);
      devices.push(d);
      await d.register('cross-3');
      const created = await hub(b).post<Task>('/api/v1/tasks', { prompt: 'watched from A', target_node_id: 'cross-3' });
      const id = created.body.data.task_id;
      await sock.timeout(2000).emitWithAck('subscribe_tasks', { taskIds: [id] });
      const progressOnA = new Promise<{ taskId: string; progress: number }>((r) => sock.once('task_progress', r));
      const assigned = await d.next('new_task');
      await d.request('task_progress', { task_id: assigned.task_id, progress: 42, message: 'on B' });
      expect(await progressOnA).toMatchObject({ taskId: id, progress: 42 });
      for (let i = 0; i < 100 && !viaWs.some((m) => m.type === 'task_progress'); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(viaWs.find((m) => m.type === 'task_progress')?.data).toMatchObject({ taskId: id, progress: 42 });
    } finally {
      sock.disconnect();
      ws.close();
    }
  });

  it('a result reported on A completes a task B handed out; both hubs agree', async () => {
    const d = new TestDevice(a.url);
    devices.push(d);
    await d.register('cross-2');
    const created = await hub(b).post<Task>('/api/v1/tasks', { prompt: 'finish on A', target_node_id: 'cross-2' });
    const assigned = await d.next('new_task');
    expect(
      await d.request('task_result', {
        task_id: assigned.task_id,
        attempt: assigned.attempt,
        result: { success: true },
      }),
    ).toMatchObject({ success: true, status: 'completed' });
    const onB = await hub(b).get<Task>(`/api/v1/tasks/${created.body.data.task_id}`);
    expect(onB.body.data.state).toBe('completed');
    const nodesOnB = await hub(b).get<{ nodes: { node_id: string; status: string }[] }>('/api/v1/nodes');
    expect(nodesOnB.body.data.nodes.map((n) => n.node_id).sort()).toEqual(['cross-1', 'cross-2', 'cross-3']);
  });
});
