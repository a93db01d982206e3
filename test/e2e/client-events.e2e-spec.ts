import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/** A raw /ws client that records `{type, data}` messages and can wait for one. */
class StreamClient {
  readonly messages: { type: string; data: Record<string, unknown> }[] = [];
  readonly ws: WebSocket;
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) =>
      this.messages.push(JSON.parse(raw.toString()) as { type: string; data: Record<string, unknown> }),
    );
  }
  opened(): Promise<void> {
    return new Promise((ok, fail) => {
      this.ws.once('open', () => ok());
      this.ws.once('error', fail);
    });
  }
  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }
  async waitFor(
    match: (m: { type: string; data: Record<string, unknown> }) => boolean,
    timeoutMs = 5000,
  ): Promise<{ type: string; data: Record<string, unknown> }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no matching message; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe('client events: raw /ws stream and the /events namespace', () => {
  let t: TestApp;
  let client: Api;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    t = await startTestApp({ METRICS_UPDATE_INTERVAL_MS: '200' });
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    closers.splice(0).forEach((c) => c());
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(() => t.close());

  const wsUrl = (query = ''): string => `${t.url.replace('http', 'ws')}/ws?token=${t.keys.client}${query}`;
  const stream = async (query = ''): Promise<StreamClient> => {
    const s = new StreamClient(wsUrl(query));
    closers.push(() => s.ws.close());
    await s.opened();
    return s;
  };
  const device = async (id: string): Promise<TestDevice> => {
    const d = new TestDevice(t.url, t.keys.worker);
    closers.push(() => d.close());
    await d.register(id);
    return d;
  };
  /** Runs a task on the device: progress 50, then a result. */
  const runOn = async (d: TestDevice): Promise<string> => {
    const assigned = await d.next('new_task');
    await d.request('task_progress', { task_id: assigned.task_id, progress: 50, message: 'half way' });
    await d.request('task_result', { task_id: assigned.task_id, result: { success: true, output: 'done' } });
    return assigned.task_id as string;
  };

  it('/ws: a subscriber sees task_started → task_progress → task_completed for its task and nothing for others', async () => {
    const s = await stream();
    expect((await s.waitFor((m) => m.type === 'connected')).data).toMatchObject({ subscribed: 'all' });
    // The initial state comes by itself; get_status asks again.
    expect((await s.waitFor((m) => m.type === 'status')).data).toMatchObject({ tasks: { pending: 0 } });
    s.send({ type: 'get_status' });

    const mine = (await client.post<Task>('/api/v1/tasks', { prompt: 'mine', target_node_id: 'ws-dev' })).body.data
      .task_id;
    s.send({ type: 'subscribe_tasks', data: { taskIds: [mine] } });
    expect((await s.waitFor((m) => m.type === 'subscribed')).data).toEqual({ all: false, taskIds: [mine] });
    const other = (await client.post<Task>('/api/v1/tasks', { prompt: 'other', target_node_id: 'ws-other' })).body.data
      .task_id;

    const d = await device('ws-dev');
    const o = await device('ws-other');
    await runOn(d);
    await runOn(o);
    await s.waitFor((m) => m.type === 'task_completed');
    const forMine = s.messages.filter((m) => m.data.taskId === mine).map((m) => m.type);
    // task_created came while the stream still heard every task (the default).
    expect(forMine).toEqual(['task_created', 'task_started', 'task_progress', 'task_completed']);
    expect(s.messages.filter((m) => m.data.taskId === other)).toEqual([]);
    const progress = s.messages.find((m) => m.type === 'task_progress');
    expect(progress?.data).toMatchObject({ taskId: mine, progress: 50, message: 'half way' });
    expect((await s.waitFor((m) => m.type === 'task_completed')).data).toMatchObject({ result: { output: 'done' } });
  });

  it('/ws: malformed messages get {type: error} and the connection stays usable', async () => {
    const s = await stream();
    s.send('not json at all');
    s.send({ data: 1 });
    s.send({ type: 'format_disk' });
    s.send({ type: 'subscribe_tasks', data: { taskIds: 'all of them' } });
    s.send({ type: 'ping' });
    await s.waitFor((m) => m.type === 'pong');
    const errors = s.messages.filter((m) => m.type === 'error').map((m) => (m.data.details as { field: string }).field);
    expect(errors).toEqual(['message', 'type', 'type', 'data.taskIds']);
    // The one socket error shape: code and error_code, message, details, the message type it answers.
    expect(s.messages.find((m) => m.type === 'error' && m.data.event === 'subscribe_tasks')?.data).toEqual({
      code: 'VALIDATION_ERROR',
      error_code: 'VALIDATION_ERROR',
      message: 'taskIds must be an array of task ids',
      details: { field: 'data.taskIds' },
      event: 'subscribe_tasks',
    });
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('/ws: refuses a missing key and hands the agent-proxy query forms to the proxy', async () => {
    const anon = new WebSocket(`${t.url.replace('http', 'ws')}/ws`);
    const status = await new Promise<number>((resolve) =>
      anon.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    expect(status).toBe(401);
    // The proxy speaks seed 003's `{event, data}`; no service is registered here.
    const proxy = await stream('&service=echo');
    const refused = (await proxy.waitFor((m) => (m as unknown as { event?: string }).event === 'error')) as unknown as {
      data: Record<string, unknown>;
    };
    expect(refused.data).toMatchObject({ code: 'ROUTING_FAILED', recoverable: false });
  });

  it('an upgrade to a path nobody serves is answered 404 at once, not left hanging', async () => {
    const started = Date.now();
    const stray = new WebSocket(`${t.url.replace('http', 'ws')}/no-such-channel?x=1`);
    const status = await new Promise<number>((resolve, reject) => {
      stray.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      stray.once('error', reject);
    });
    expect(status).toBe(404);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('/events: subscribe_tasks by id delivers only that task, in order', async () => {
    const sock: Socket = io(`${t.url}/events`, {
      transports: ['websocket'],
      auth: { token: t.keys.client },
      forceNew: true,
    });
    closers.push(() => sock.disconnect());
    const seen: { event: string; taskId: string }[] = [];
    sock.onAny((event: string, data: { taskId?: string }) => data?.taskId && seen.push({ event, taskId: data.taskId }));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const mine = (await client.post<Task>('/api/v1/tasks', { prompt: 'mine', target_node_id: 'ev-dev' })).body.data
      .task_id;
    const ack = (await sock.timeout(2000).emitWithAck('subscribe_tasks', { taskIds: [mine] })) as {
      success: boolean;
      subscribed: string[];
    };
    expect(ack).toMatchObject({ success: true, subscribed: [`task:${mine}`] });
    await client.post('/api/v1/tasks', { prompt: 'not mine', target_node_id: 'ev-other' });
    await runOn(await device('ev-dev'));
    await runOn(await device('ev-other'));
    for (let i = 0; i < 100 && !seen.some((s) => s.event === 'task_completed'); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([
      { event: 'task_started', taskId: mine },
      { event: 'task_progress', taskId: mine },
      { event: 'task_completed', taskId: mine },
    ]);
    const bad = (await sock.timeout(2000).emitWithAck('subscribe_tasks', { taskIds: 42 })) as {
      success: boolean;
      error: { details: { field: string } };
    };
    expect(bad).toMatchObject({ success: false, error: { details: { field: 'taskIds' } } });
  });

  it('/events: metrics_update arrives on schedule, only to clients that asked', async () => {
    const asked = io(`${t.url}/events`, { transports: ['websocket'], auth: { token: t.keys.client }, forceNew: true });
    const quiet = io(`${t.url}/events`, { transports: ['websocket'], auth: { token: t.keys.client }, forceNew: true });
    closers.push(
      () => asked.disconnect(),
      () => quiet.disconnect(),
    );
    const updates: { at: number; tasks: Record<string, number> }[] = [];
    let quietGot = 0;
    asked.on('metrics_update', (m: { tasks: Record<string, number> }) =>
      updates.push({ at: Date.now(), tasks: m.tasks }),
    );
    quiet.on('metrics_update', () => quietGot++);
    await Promise.all([asked, quiet].map((s) => new Promise<void>((r) => s.once('connect', () => r()))));
    expect(await asked.timeout(2000).emitWithAck('subscribe_metrics', {})).toMatchObject({
      success: true,
      interval_ms: 200,
    });
    await client.post('/api/v1/tasks', { prompt: 'counted' });
    for (let i = 0; i < 100 && updates.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(updates.length).toBeGreaterThanOrEqual(3);
    expect(updates[updates.length - 1].tasks.pending).toBe(1);
    const gaps = updates.slice(1).map((u, i) => u.at - updates[i].at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
    expect(quietGot).toBe(0);
  });

  it('/events: a refused subscription answers the one socket error shape, as an event and in the ack', async () => {
    const sock = io(`${t.url}/events`, { transports: ['websocket'], auth: { token: t.keys.client }, forceNew: true });
    closers.push(() => sock.disconnect());
    const event = new Promise<Record<string, unknown>>((r) => sock.once('error', r));
    const ack = (await sock.timeout(5000).emitWithAck('subscribe_tasks', { taskIds: 'all of them' })) as {
      success: boolean;
      error: Record<string, unknown>;
    };
    const expected = {
      code: 'VALIDATION_ERROR',
      error_code: 'VALIDATION_ERROR',
      message: expect.stringContaining('taskIds must be an array'),
      details: { field: 'taskIds' },
      event: 'subscribe_tasks',
    };
    expect(ack).toEqual({ success: false, error: expected });
    expect(await event).toEqual(expected);
  });

  it('/events: refuses a socket without a key', async () => {
    const sock = io(`${t.url}/events`, { transports: ['websocket'], forceNew: true, reconnection: false });
    closers.push(() => sock.disconnect());
    const error = await new Promise<{ code: string }>((r) => sock.once('error', r));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error).toMatchObject({ error_code: 'UNAUTHORIZED', event: 'connect', message: expect.any(String) });
  });
});
