import pg from 'pg';
import { apiClient, type Task } from '../support/api.js';
import { ApexSocket, ReconnectingApexNode } from '../support/apex-node.js';
import { freshDatabase, HubProcess } from '../support/hub-process.js';
import type { TestApp } from '../support/test-app.js';

// Seed 001 nodes on the raw WebSocket channel survive what Socket.IO devices survive: a hub
// SIGKILLed or stopped mid-task, and (with Redis) a task, a cancel or a replacement issued on
// another hub process. Real hub processes, real ws clients, real PostgreSQL.
const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[apex-recovery] skipped: ${skipReason}\n`);

const hubEnv = (databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: databaseUrl,
  AUTH_REQUIRED: 'false',
  RATE_LIMIT_MAX: '0',
  NODE_RECONNECT_GRACE_MS: '5000',
  HUB_INSTANCE_HEARTBEAT_MS: '1000',
  HUB_INSTANCE_STALE_MS: '3000',
  ...extra,
});

const api = (h: HubProcess) => apiClient({ url: h.url } as TestApp, undefined);
const nodeUrl = (h: HubProcess): string => `${h.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=`;

async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

(skipReason ? describe.skip : describe)('Apex nodes across hub restarts', () => {
  let hub: HubProcess;
  let node: ReconnectingApexNode;

  afterEach(async () => {
    node?.stop();
    await hub?.stop();
  }, 30_000);

  const task = async (id: string): Promise<Task> => (await api(hub).get<Task>(`/api/v1/tasks/${id}`)).body.data;

  it('a hub SIGKILLed while the node runs a task: the node reconnects, gets the same attempt again, and completes it once', async () => {
    const db = await freshDatabase('apex_kill');
    hub = await new HubProcess(hubEnv(db)).start();
    node = new ReconnectingApexNode(() => nodeUrl(hub), 'apex-k');
    await node.start();
    const created = await api(hub).post<Task>('/api/v1/tasks', { type: 'organize', data: { n: 1 } });
    const id = created.body.data.task_id;
    await until(
      () => node.assignments,
      (a) => a.length === 1,
    );
    await until(
      () => task(id),
      (t) => t.state === 'running',
    );

    const port = hub.port;
    await hub.kill();
    const again = node.nextRegistration();
    hub = await new HubProcess(hubEnv(db)).start(port);
    await again;
    // Seed nodes say nothing about what they run: the held task comes again, same attempt.
    await until(
      () => node.assignments,
      (a) => a.length === 2,
    );
    expect(node.assignments).toEqual([
      { task_id: id, attempt: 1 },
      { task_id: id, attempt: 1 },
    ]);
    const reply = await node.finish(id, 1);
    expect(reply.data).toMatchObject({ success: true, status: 'completed' });
    const done = await task(id);
    expect(done).toMatchObject({ state: 'completed', attempt: 1, node_id: 'apex-k' });
    const rows = await new pg.Client({ connectionString: db });
    await rows.connect();
    const completions = await rows.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = 'completed'`,
      [id],
    );
    await rows.end();
    expect(completions.rows[0].n).toBe(1);
  }, 60_000);

  it('a hub stopped with SIGTERM tells the node it may reconnect (1012), and the node carries on with the next hub', async () => {
    const db = await freshDatabase('apex_term');
    hub = await new HubProcess(hubEnv(db)).start();
    node = new ReconnectingApexNode(() => nodeUrl(hub), 'apex-t');
    await node.start();
    const port = hub.port;
    expect(await hub.stop()).toBe(0);
    expect(node.shutdownNotices[0]).toMatchObject({ reconnect: true });
    expect(node.closes[0]).toBe(1012);
    const again = node.nextRegistration();
    hub = await new HubProcess(hubEnv(db)).start(port);
    await again;
    const id = (await api(hub).post<Task>('/api/v1/tasks', { type: 'organize', data: {} })).body.data.task_id;
    const assigned = await until(
      () => node.assignments,
      (a) => a.some((x) => x.task_id === id),
    );
    expect(assigned.find((x) => x.task_id === id)?.attempt).toBe(1);
    await node.finish(id, 1);
    expect((await task(id)).state).toBe('completed');
  }, 60_000);

  it('a node that never comes back has its task given to another node after the grace', async () => {
    const db = await freshDatabase('apex_lost');
    hub = await new HubProcess(hubEnv(db, { NODE_RECONNECT_GRACE_MS: '1500' })).start();
    const lost = await ApexSocket.open(nodeUrl(hub));
    await lost.request('node_register', { node_id: 'apex-lost' });
    const id = (await api(hub).post<Task>('/api/v1/tasks', { type: 'organize', data: {} })).body.data.task_id;
    await lost.nextOf('task_assign');
    lost.ws.terminate();
    node = new ReconnectingApexNode(() => nodeUrl(hub), 'apex-other');
    await node.start();
    const started = Date.now();
    await until(
      () => node.assignments,
      (a) => a.some((x) => x.task_id === id),
    );
    // Within the grace plus a liveness tick or two, never a lease of half an hour.
    expect(Date.now() - started).toBeLessThan(6000);
    expect(node.assignments.find((x) => x.task_id === id)?.attempt).toBe(2);
  }, 60_000);
});

const redisSkip = skipReason ?? (!process.env.REDIS_URL ? 'REDIS_URL is not set' : null);
if (redisSkip && !skipReason) process.stdout.write(`\n[apex-recovery two hubs] skipped: ${redisSkip}\n`);

(redisSkip ? describe.skip : describe)('Apex nodes with two hub processes (PostgreSQL + Redis)', () => {
  let a: HubProcess;
  let b: HubProcess;
  const sockets: ApexSocket[] = [];

  beforeAll(async () => {
    const db = await freshDatabase('apex_two_hubs');
    const env = hubEnv(db, { REDIS_URL: process.env.REDIS_URL as string });
    [a, b] = await Promise.all([new HubProcess(env).start(), new HubProcess(env).start()]);
  }, 60_000);
  afterAll(async () => {
    sockets.forEach((s) => s.close());
    expect(await Promise.all([a?.stop(), b?.stop()])).toEqual([0, 0]);
  }, 30_000);

  it('a node on B gets a task submitted on A for it, and a cancel issued on A', async () => {
    const s = await ApexSocket.open(nodeUrl(b));
    sockets.push(s);
    await s.request('node_register', { node_id: 'apex-on-b' });
    for (let i = 0; i < 5; i++) {
      const id = (await api(a).post<Task>('/api/v1/tasks', { type: 'x', data: { i }, target_node_id: 'apex-on-b' }))
        .body.data.task_id;
      const assign = await s.nextOf('task_assign', (f) => f.data.task_id === id);
      s.send('ack', undefined, assign.id);
      await until(
        async () => (await api(a).get<Task>(`/api/v1/tasks/${id}`)).body.data,
        (t) => t.state === 'running',
      );
      expect((await api(a).post(`/api/v1/tasks/${id}/cancel`, { reason: 'from A' })).status).toBe(200);
      expect((await s.nextOf('cancel_task', (f) => f.data.task_id === id)).data).toMatchObject({ reason: 'from A' });
    }
  }, 60_000);

  it('the same node registering on A closes its connection on B', async () => {
    const onB = await ApexSocket.open(nodeUrl(b));
    sockets.push(onB);
    await onB.request('node_register', { node_id: 'apex-moves' });
    const onA = await ApexSocket.open(nodeUrl(a));
    sockets.push(onA);
    await onA.request('node_register', { node_id: 'apex-moves' });
    expect((await onB.nextOf('error')).data.code).toBe('REPLACED');
    expect((await onB.waitClosed()).code).toBe(4001);
    const view = await api(b).get<Record<string, unknown>>('/v1/nodes/apex-moves');
    expect(view.body.data).toMatchObject({ status: 'online', transport: 'websocket' });
  }, 30_000);

  it('log lines of a node on B reach a log channel listener on A', async () => {
    const logs = await ApexSocket.open(`${a.url.replace('http', 'ws')}/ABPlog/VCP_Key=?node_id=apex-logger`);
    sockets.push(logs);
    const s = await ApexSocket.open(nodeUrl(b));
    sockets.push(s);
    await s.request('node_register', { node_id: 'apex-logger' });
    await s.request('log', { level: 'warn', message: 'from B' });
    expect((await logs.nextOf('log', (f) => f.data.message === 'from B')).data).toMatchObject({
      node_id: 'apex-logger',
      level: 'warn',
    });
  }, 30_000);
});
