import { DeviceGateway } from '../../src/modules/realtime/device.gateway.js';
import { DeviceClient } from '../../src/sdk/device-client.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

describe('SDK DeviceClient against the running hub', () => {
  let t: TestApp;
  let client: Api;
  const clients: DeviceClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ NODE_RECONNECT_GRACE_MS: '10000' });
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(() => t.close());

  const waitFor = async (what: () => Promise<boolean>, timeoutMs = 5000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await what())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const states = async (ids: string[]): Promise<string[]> =>
    Promise.all(ids.map(async (id) => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data.state));

  it('runs tasks up to its capacity, reporting progress and results', async () => {
    let concurrent = 0;
    let peak = 0;
    const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'sdk-1', capacity: 2 }).onTask(
      async ({ task, progress }) => {
        concurrent++;
        peak = Math.max(peak, concurrent);
        progress(50, 'half way');
        await new Promise((r) => setTimeout(r, 30));
        concurrent--;
        return { echoed: (task.data as { n: number }).n };
      },
    );
    clients.push(device);
    const info = await device.connect();
    expect(info).toMatchObject({ device_id: 'sdk-1', capacity: 2 });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++)
      ids.push((await client.post<Task>('/api/v1/tasks', { type: 'echo', data: { n } })).body.data.task_id);
    await waitFor(async () => (await states(ids)).every((s) => s === 'completed'));
    expect(peak).toBeLessThanOrEqual(2);
    const results = await Promise.all(
      ids.map(async (id) => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data.result),
    );
    expect(results).toEqual([0, 1, 2, 3, 4].map((n) => ({ echoed: n })));
    const logs = await client.get<{ logs: { type: string }[] }>(`/api/v1/tasks/${ids[0]}/logs`);
    // The SDK acks each assignment: `started` when the ack lands before the first progress report (it races it).
    const types = logs.body.data.logs.map((l) => l.type);
    expect(types.filter((x) => x !== 'started')).toEqual(['created', 'dispatched', 'progress', 'completed']);
    expect(types.filter((x) => x === 'started').length).toBeLessThanOrEqual(1);
  });

  it('a thrown error fails the attempt with its message', async () => {
    const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'sdk-fail' }).onTask(async () => {
      throw new Error('disk full');
    });
    clients.push(device);
    await device.connect();
    const id = (await client.post<Task>('/api/v1/tasks', { prompt: 'x', max_retries: 0 })).body.data.task_id;
    await waitFor(async () => (await states([id]))[0] === 'failed');
    expect((await client.get<Task>(`/api/v1/tasks/${id}`)).body.data.error).toMatchObject({ message: 'disk full' });
  });

  it('cancellation aborts the handler signal', async () => {
    let aborted = false;
    const started = new Promise<void>((resolveStarted) => {
      const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'sdk-cancel' }).onTask(
        ({ signal }) =>
          new Promise((_, reject) => {
            resolveStarted();
            signal.addEventListener('abort', () => {
              aborted = true;
              reject(signal.reason as Error);
            });
          }),
      );
      clients.push(device);
      void device.connect();
    });
    const id = (await client.post<Task>('/api/v1/tasks', { prompt: 'long' })).body.data.task_id;
    await started;
    await client.post(`/api/v1/tasks/${id}/cancel`, { reason: 'enough' });
    await waitFor(async () => aborted);
    expect((await states([id]))[0]).toBe('cancelled');
  });

  it('reconnects, registers again and delivers a result finished while disconnected', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const device = new DeviceClient({ url: t.url, key: t.keys.worker, id: 'sdk-reconnect' }).onTask(async () => {
      await gate;
      return { survived: true };
    });
    clients.push(device);
    await device.connect();
    const id = (await client.post<Task>('/api/v1/tasks', { prompt: 'keep going' })).body.data.task_id;
    await waitFor(async () => device.activeTasks.includes(id));
    // Its acknowledgement recorded before the drop (the task may reach the device before the
    // POST's answer, assigned at intake: the ack can still be in flight here).
    await waitFor(async () => (await states([id]))[0] === 'running');

    const reregistered = new Promise<Record<string, unknown>>((r) => device.once('registered', r));
    const dropped = new Promise<void>((r) => device.once('disconnected', () => r()));
    // The connection drops under the client (transport closed): socket.io-client reconnects by itself.
    t.app
      .get(DeviceGateway)
      .server.sockets.sockets.get(device.socket.id as string)
      ?.conn.close();
    await dropped;
    release(); // the task finishes while the device is offline: its result waits in the outbox
    const info = await reregistered;
    // The SDK acknowledged the assignment, so the task was running when the connection dropped.
    expect(info.held_tasks).toEqual([{ task_id: id, attempt: 1, status: 'running' }]);
    await waitFor(async () => (await states([id]))[0] === 'completed');
    expect((await client.get<Task>(`/api/v1/tasks/${id}`)).body.data.result).toEqual({ survived: true });
  });
});
