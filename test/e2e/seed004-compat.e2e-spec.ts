import { spawnSync } from 'node:child_process';
import { io } from 'socket.io-client';
import { apiClient, type Api } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** The document's timestamps: `2025-09-17T14:30:00` (no `Z`, no milliseconds). */
const SEED_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;

/**
 * A seed 004 Python client: `datetime.fromisoformat(v)` (before 3.11 it refuses a `Z`), then
 * `datetime.now() - v` (an aware value would raise: the document's are naive). Null without python3.
 */
function pythonReads(values: string[]): string | null {
  const script = [
    'import sys',
    'from datetime import datetime',
    'for v in sys.argv[1:]:',
    '    datetime.now() - datetime.fromisoformat(v)',
    "print('ok')",
  ].join('\n');
  const run = spawnSync('python3', ['-c', script, ...values], { encoding: 'utf8' });
  if (run.error) return null;
  return run.status === 0 ? run.stdout.trim() : run.stderr.trim();
}

/** Seed 004 (distributed task system) clients, unchanged, against the hub (auth off, as the seed assumes). */
describe('seed 004 compatibility surface', () => {
  let t: TestApp;
  let anon: Api;

  beforeAll(async () => {
    t = await startTestApp({ AUTH_REQUIRED: 'false' });
    anon = apiClient(t, undefined);
  });
  afterAll(() => t.close());

  it('runs the seed JavaScript device example verbatim, with curl-style dispatch and status', async () => {
    // --- the seed's example, only the URL changed ---
    const socket = io(t.url.replace('http', 'ws'));
    socket.emit('device_register', {
      device_id: 'android_001',
      device_name: '我的手机',
      device_info: {
        type: 'android',
        version: '13',
      },
    });
    const received: Record<string, unknown>[] = [];
    const gotTask = new Promise<Record<string, unknown>>((resolve) => {
      socket.on('new_task', (data: Record<string, unknown>) => {
        received.push(data);
        resolve(data);
      });
    });
    const registered = new Promise<Record<string, unknown>>((resolve) => socket.once('register_success', resolve));
    // ---
    try {
      expect(await registered).toMatchObject({ device_id: 'android_001', message: '注册成功' });

      const dispatched = await anon.post('/api/dispatch-task', {
        task_type: 'DELIST',
        data: { product_ids: ['123', '456'] },
      });
      expect(dispatched.status).toBe(201);
      const body = dispatched.body as unknown as Record<string, unknown>;
      expect(body).toMatchObject({
        success: true,
        device_id: 'android_001',
        device_name: '我的手机',
        message: '任务分发成功',
      });

      const task = await gotTask;
      expect(task).toMatchObject({
        type: 'new_task',
        task_id: body.task_id,
        task_type: 'DELIST',
        data: { product_ids: ['123', '456'] },
      });
      socket.emit('task_progress', { task_id: task.task_id, progress: 60, message: '正在处理第2个商品...' });
      socket.emit('task_result', {
        task_id: task.task_id,
        result: {
          success: true,
          processed_count: 2,
          failed_count: 0,
          execution_time: 45.2,
          message: '下架完成',
          data: { details: ['商品123已下架', '商品456已下架'] },
        },
      });

      let status: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) {
        status = (await anon.get(`/api/task/${body.task_id}/status`)).body as unknown as Record<string, unknown>;
        if ((status.task as { status: string }).status === 'completed') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toMatchObject({
        success: true,
        task: {
          task_id: body.task_id,
          status: 'completed',
          progress: 100,
          result: { success: true, processed_count: 2, message: '下架完成' },
        },
      });
      expect(received).toHaveLength(1);

      const system = (await anon.get('/')).body as unknown as Record<string, unknown>;
      expect(system).toMatchObject({ status: 'running', connected_devices: 1, active_tasks: 0 });
      const devices = (await anon.get('/api/devices')).body as unknown as {
        success: boolean;
        devices: Record<string, unknown>[];
        total: number;
      };
      expect(devices.success).toBe(true);
      expect(devices.total).toBe(1);
      expect(devices.devices[0]).toMatchObject({
        device_id: 'android_001',
        device_name: '我的手机',
        status: 'online',
        task_count: 0,
        connection_info: { sid: socket.id },
      });
      const tasks = (await anon.get('/api/tasks')).body as unknown as {
        tasks: Record<string, unknown>[];
        total: number;
      };
      expect(tasks.tasks[0]).toMatchObject({
        task_id: body.task_id,
        task_type: 'DELIST',
        status: 'completed',
        device_id: 'android_001',
        data: { product_ids: ['123', '456'] },
      });
    } finally {
      socket.disconnect();
    }
  });

  it('queues when no device is free and answers with device_id null', async () => {
    await t.db.query(`UPDATE nodes SET status = 'offline'`);
    const res = await anon.post('/api/dispatch-task', {
      task_type: 'COLLECT',
      data: { target_url: 'https://example.com/shop' },
    });
    expect(res.body as unknown as Record<string, unknown>).toMatchObject({ success: true, device_id: null });
    const d = new TestDevice(t.url);
    try {
      await d.register('late-device');
      expect((await d.next('new_task')).task_type).toBe('COLLECT');
    } finally {
      d.close();
    }
  });

  it('names a busy device it was asked for: the task waits for that device', async () => {
    const busy = new TestDevice(t.url);
    try {
      await busy.register('busy-phone', { device_name: '小米手机' });
      const first = await anon.post('/api/dispatch-task', {
        task_type: 'DELIST',
        data: { product_ids: ['1'] },
        device_id: 'busy-phone',
      });
      expect(first.body as unknown as Record<string, unknown>).toMatchObject({
        device_id: 'busy-phone',
        message: '任务分发成功',
      });
      await busy.next('new_task');
      const second = await anon.post('/api/dispatch-task', {
        task_type: 'DELIST',
        data: { product_ids: ['2'] },
        device_id: 'busy-phone',
      });
      expect(second.body as unknown as Record<string, unknown>).toMatchObject({
        success: true,
        device_id: 'busy-phone',
        device_name: '小米手机',
      });
    } finally {
      busy.close();
    }
  });

  it('GET / names the system as the document does, and every seed 004 timestamp is its naive form in local time', async () => {
    const d = new TestDevice(t.url);
    try {
      const registered = await d.register('ts-phone');
      const dispatched = (await anon.post('/api/dispatch-task', { task_type: 'DELIST', device_id: 'ts-phone' }))
        .body as unknown as { task_id: string };
      const task = await d.next('new_task');
      d.socket.emit('heartbeat', { device_id: 'ts-phone', timestamp: '2025-09-17T14:30:00' });
      const beat = await d.next('heartbeat_ack');

      const system = (await anon.get('/')).body as unknown as Record<string, string>;
      expect(system).toMatchObject({ system: '分布式任务系统', implementation: 'taskhub', status: 'running' });
      const device = (
        (await anon.get('/api/devices')).body as unknown as {
          devices: { device_id: string; last_heartbeat: string; connection_info: { registered_at: string } }[];
        }
      ).devices.find((x) => x.device_id === 'ts-phone')!;
      const listed = ((await anon.get('/api/tasks')).body as unknown as { tasks: Record<string, string>[] }).tasks.find(
        (x) => x.task_id === dispatched.task_id,
      )!;
      const status = (await anon.get(`/api/task/${dispatched.task_id}/status`)).body as unknown as {
        task: Record<string, string>;
      };
      const stamps: Record<string, unknown> = {
        'GET / timestamp': system.timestamp,
        'devices last_heartbeat': device.last_heartbeat,
        'devices registered_at': device.connection_info.registered_at,
        'tasks created_at': listed.created_at,
        'task status updated_at': status.task.updated_at,
        'register_success server_time': registered.server_time,
        'new_task created_at': task.created_at,
        'heartbeat_ack server_time': beat.server_time,
      };
      for (const [where, value] of Object.entries(stamps)) {
        expect([where, value]).toEqual([where, expect.stringMatching(SEED_TIME)]);
        // Local time, as the document's server (`datetime.now()`): read back as local, it is now.
        expect(Math.abs(new Date(value as string).getTime() - Date.now())).toBeLessThan(60_000);
      }
      const python = pythonReads(Object.values(stamps) as string[]);
      if (python === null) process.stdout.write('\n[seed004] python3 not found: timestamps checked by pattern only\n');
      else expect(python).toBe('ok');
    } finally {
      d.close();
    }
    // A node (node_register, seed 001) keeps ISO 8601 in UTC.
    const node = new TestDevice(t.url);
    try {
      await node.connected();
      const reply = await node.request('node_register', { node_id: 'ts-node' });
      expect(reply.server_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      node.close();
    }
  });

  it('answers errors in the seed shape', async () => {
    const bad = await anon.post('/api/dispatch-task', { data: {} });
    expect(bad.status).toBe(400);
    expect(bad.body as unknown as Record<string, unknown>).toMatchObject({
      success: false,
      error_code: 'VALIDATION_ERROR',
      details: { field: 'task_type' },
    });
    const unknownDevice = await anon.post('/api/dispatch-task', { task_type: 'DELIST', device_id: 'nobody' });
    expect(unknownDevice.status).toBe(404);
    expect(unknownDevice.body as unknown as Record<string, unknown>).toMatchObject({
      success: false,
      error_code: 'NOT_FOUND',
    });
    const missing = await anon.get('/api/task/00000000-0000-4000-8000-000000000000/status');
    expect(missing.status).toBe(404);
    expect((missing.body as unknown as { message: string }).message).toContain('Task not found');
    // The document's own ids are not UUIDs: not found, in the seed shape (not a 400).
    const seedId = await anon.get('/api/task/task_001/status');
    expect(seedId.status).toBe(404);
    expect(seedId.body as unknown as Record<string, unknown>).toMatchObject({
      success: false,
      error_code: 'NOT_FOUND',
      message: expect.stringContaining('task_001'),
    });
    const count = await t.db.query(
      `SELECT count(*)::int AS n FROM tasks WHERE type = 'DELIST' AND target_node_id = 'nobody'`,
    );
    expect(count[0].n).toBe(0);
  });
});
