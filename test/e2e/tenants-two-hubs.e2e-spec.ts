import { io, type Socket } from 'socket.io-client';
import { type Api, apiClient, type Task } from '../support/api.js';
import { ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { HubProcess } from '../support/hub-process.js';
import type { TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

// Issue 15: dispatch and stream isolation across two hub processes sharing PostgreSQL and Redis
// (docs/tenants.md, "Sockets, streams and dispatch"). Needs Redis and the built app, like two-hubs.
const skipReason = !process.env.REDIS_URL
  ? 'REDIS_URL is not set'
  : !HubProcess.canRun()
    ? 'dist/src/main.js is missing (run npm run build)'
    : null;
if (skipReason) process.stdout.write(`\n[tenants-two-hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('tenants across two hub processes', () => {
  let one: HubProcess;
  let two: HubProcess;
  const keys: Record<string, { client: string; worker: string; admin: string }> = {};
  const closers: { close(): void }[] = [];
  const api = (h: HubProcess, key: string): Api => apiClient({ url: h.url } as TestApp, key);
  const ws = (h: HubProcess, path: string): string => `${h.url.replace('http', 'ws')}${path}`;

  async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    const env = {
      DATABASE_URL: await createEmptyDatabase('tenants_two_hubs'),
      REDIS_URL: process.env.REDIS_URL as string,
      AUTH_REQUIRED: 'true',
    };
    one = await new HubProcess(env).start();
    const found = /first admin API key[^:]*: ([A-Za-z0-9_-]+)/.exec(one.output);
    if (!found) throw new Error(`no admin key printed:\n${one.output.slice(-2000)}`);
    two = await new HubProcess(env).start();
    const global = api(one, found[1]);
    for (const tenant of ['family-a', 'family-b']) {
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
  }, 90_000);

  afterAll(async () => {
    closers.forEach((c) => c.close());
    const codes = await Promise.all([one?.stop(), two?.stop()]);
    if (codes.some((c) => c !== 0))
      process.stdout.write(`\n[tenants-two-hubs] hub output:\n${one.output.slice(-3000)}\n`);
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  it("devices of two tenants on two hubs each run only their tenant's tasks; streams stay within the tenant", async () => {
    // Listeners of B on both hubs, of A on the other ones.
    const eventsB: Socket = io(`${one.url}/events`, {
      auth: { token: keys['family-b'].client },
      transports: ['websocket'],
      forceNew: true,
    });
    closers.push({ close: () => eventsB.close() });
    const heardB: string[] = [];
    eventsB.onAny((event: string, d: { task_id?: string; node_id?: string }) =>
      heardB.push(`${event}:${d?.task_id ?? d?.node_id ?? ''}`),
    );
    await new Promise<void>((ok) => eventsB.on('connect', () => ok()));
    await eventsB.timeout(5000).emitWithAck('subscribe_tasks', { all: true });
    const wsB = await ApexSocket.open(ws(two, `/ws?token=${keys['family-b'].client}`));
    const wsA = await ApexSocket.open(ws(one, `/ws?token=${keys['family-a'].client}`));
    const logB = await ApexSocket.open(ws(one, `/ABPlog/VCP_Key=${encodeURIComponent(keys['family-b'].admin)}`));
    const logA = await ApexSocket.open(ws(two, `/ABPlog/VCP_Key=${encodeURIComponent(keys['family-a'].admin)}`));
    closers.push(wsA, wsB, logA, logB);

    const got: Record<string, string[]> = {};
    const device = async (h: HubProcess, tenant: string, id: string): Promise<TestDevice> => {
      const d = new TestDevice(h.url, keys[tenant].worker);
      closers.push(d);
      expect(await d.register(id)).toMatchObject({ device_id: id });
      got[id] = [];
      d.socket.on('new_task', (m: { task_id: string }) => {
        got[id].push(m.task_id);
        d.socket.emit('log', { task_id: m.task_id, message: `line of ${tenant}` });
        d.socket.emit('task_result', { task_id: m.task_id, result: { success: true } });
      });
      return d;
    };
    await device(one, 'family-a', 'a-on-1');
    await device(two, 'family-a', 'a-on-2');
    await device(one, 'family-b', 'b-on-1');
    await device(two, 'family-b', 'b-on-2');

    // A node id of A is refused to B on the other hub.
    const intruder = new TestDevice(two.url, keys['family-b'].worker);
    closers.push(intruder);
    expect(await intruder.request('device_register', { device_id: 'a-on-1' })).toMatchObject({
      success: false,
      error: { code: 'CONFLICT', details: { reason: 'NODE_ID_TAKEN' } },
    });

    const ids: Record<string, string[]> = { 'family-a': [], 'family-b': [] };
    for (let i = 0; i < 10; i++) {
      for (const tenant of ['family-a', 'family-b']) {
        const h = i % 2 === 0 ? one : two;
        const res = await api(h, keys[tenant].client).post<Task>('/api/v1/tasks', { type: 'job', data: { i } });
        expect(res.status).toBe(201);
        ids[tenant].push(res.body.data.task_id);
      }
    }
    for (const tenant of ['family-a', 'family-b'])
      for (const id of ids[tenant])
        await until(
          async () => (await api(two, keys[tenant].client).get<Task>(`/api/v1/tasks/${id}`)).body.data.state,
          (s) => s === 'completed',
        );
    const ranBy = (prefix: string): string[] =>
      Object.entries(got)
        .filter(([d]) => d.startsWith(prefix))
        .flatMap(([, t]) => t)
        .sort();
    expect(ranBy('a-')).toEqual([...ids['family-a']].sort());
    expect(ranBy('b-')).toEqual([...ids['family-b']].sort());

    // Streams: each tenant's listeners hear their own tasks, from either hub, and none of the other's.
    const lastA = ids['family-a'].at(-1) as string;
    const lastB = ids['family-b'].at(-1) as string;
    await until(
      () => wsA.frames.some((f) => f.type === 'task_completed' && (f.data.taskId ?? f.data.task_id) === lastA),
      (y) => y,
    );
    await until(
      () => wsB.frames.some((f) => f.type === 'task_completed' && (f.data.taskId ?? f.data.task_id) === lastB),
      (y) => y,
    );
    await until(
      () => heardB.includes(`task_completed:${lastB}`),
      (y) => y,
    );
    await until(
      () => logA.frames.some((f) => f.data.message === 'line of family-a'),
      (y) => y,
    );
    await until(
      () => logB.frames.some((f) => f.data.message === 'line of family-b'),
      (y) => y,
    );
    const ofA = (text: string): boolean => ids['family-a'].some((id) => text.includes(id)) || text.includes('a-on-');
    const ofB = (text: string): boolean => ids['family-b'].some((id) => text.includes(id)) || text.includes('b-on-');
    expect(heardB.filter(ofA)).toEqual([]);
    expect(wsB.frames.map((f) => JSON.stringify(f)).filter(ofA)).toEqual([]);
    expect(logB.frames.map((f) => JSON.stringify(f)).filter(ofA)).toEqual([]);
    expect(wsA.frames.map((f) => JSON.stringify(f)).filter(ofB)).toEqual([]);
    expect(logA.frames.map((f) => JSON.stringify(f)).filter(ofB)).toEqual([]);
  }, 120_000);
});
