import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { type Api, apiClient, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { HubProcess } from '../support/hub-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { createEmptyDatabase } from '../support/test-database.js';

// Proactive tasks and reminders (issue 26, docs/schedules.md): real PostgreSQL, HTTP and sockets.

interface Schedule {
  schedule_id: string;
  name: string | null;
  cron: string | null;
  timezone: string;
  at: string | null;
  enabled: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_task_id: string | null;
  runs: number;
  last_error: string | null;
  task: Record<string, unknown> | null;
}
interface Notice {
  message: string;
  source: string;
  severity: string;
  schedule_id: string;
  scheduled_for: string;
  node_id?: string;
}

const SCHEDULES = '/api/v1/schedules';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString();

async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** An /events client that records `notification` pushes. */
async function eventsClient(url: string, key?: string): Promise<{ socket: Socket; notices: Notice[] }> {
  const auth = key ? { token: key } : {};
  const socket = io(`${url}/events`, { transports: ['websocket'], auth, forceNew: true });
  const notices: Notice[] = [];
  socket.on('notification', (n: Notice) => notices.push(n));
  await new Promise<void>((ok, fail) => {
    socket.once('connect', () => ok());
    socket.once('connect_error', fail);
  });
  return { socket, notices };
}

/** Tasks a schedule started, by the slot each was for. */
async function tasksOf(t: TestApp, scheduleId: string): Promise<{ id: string; slot: string }[]> {
  const rows: { id: string; slot: string }[] = await t.db.query(
    `SELECT id, metadata->>'scheduled_for' AS slot FROM tasks WHERE metadata->>'schedule_id' = $1 ORDER BY 2`,
    [scheduleId],
  );
  return rows;
}

describe('schedules', () => {
  let t: TestApp;
  let client: Api;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    closers.splice(0).forEach((c) => c());
    await t.db.query('DELETE FROM schedules');
  });
  afterAll(() => t.close());

  const create = (body: Record<string, unknown>, api = client) => api.post<Schedule>(SCHEDULES, body);
  const get = (id: string, api = client) => api.get<Schedule>(`${SCHEDULES}/${id}`);

  it('a one-shot (at) starts a normal task that reaches a connected device, then is spent', async () => {
    const device = new TestDevice(t.url, t.keys.worker);
    closers.push(() => device.close());
    await device.register('sched-dev-1');
    const made = await create({
      name: 'soon',
      at: inMs(1200),
      task: { prompt: 'scheduled work', target_node_id: 'sched-dev-1', metadata: { origin: 'test' } },
    });
    expect(made.status).toBe(201);
    const s = made.body.data;
    expect(s).toMatchObject({ name: 'soon', enabled: true, runs: 0, last_task_id: null, cron: null });
    expect(Date.parse(s.next_run_at as string)).toBe(Date.parse(s.at as string));

    const assigned = await device.next('new_task', () => true, 6000);
    const task = (await client.get<Task>(`/api/v1/tasks/${assigned.task_id as string}`)).body.data;
    expect(task.prompt).toBe('scheduled work');
    expect(task.metadata).toMatchObject({ origin: 'test', schedule_id: s.schedule_id, scheduled_for: s.at });

    const after = await until(
      () => get(s.schedule_id),
      (r) => r.body.data.runs === 1,
    );
    expect(after.body.data).toMatchObject({
      enabled: false,
      next_run_at: null,
      last_run_at: s.at,
      last_task_id: task.task_id,
      last_error: null,
    });
    await sleep(1200); // spent: nothing more
    expect(await tasksOf(t, s.schedule_id)).toHaveLength(1);
  });

  it('a cron schedule fires every slot (seconds field) until disabled; PATCH and DELETE', async () => {
    const made = await create({ cron: '* * * * * *', task: { type: 'tick', prompt: 'tick' } });
    expect(made.status).toBe(201);
    const id = made.body.data.schedule_id;
    await until(
      () => tasksOf(t, id),
      (rows) => rows.length >= 3,
    );
    const off = await client.patch<Schedule>(`${SCHEDULES}/${id}`, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.data).toMatchObject({ enabled: false, next_run_at: null });
    const fired = await tasksOf(t, id);
    // One task per second-slot, in order, no slot twice. A fire more than a slot late (a loaded
    // machine) moves on from now and skips the slots that passed (docs/schedules.md, "Missed
    // slots"), so a gap is a whole number of slots, and most are one.
    const slots = fired.map((r) => Date.parse(r.slot));
    expect(new Set(slots).size).toBe(slots.length);
    const gaps = slots.slice(1).map((s, i) => s - slots[i]);
    gaps.forEach((g) => {
      expect(g % 1000).toBe(0);
      expect(g).toBeGreaterThanOrEqual(1000);
    });
    expect(gaps.filter((g) => g === 1000).length * 2).toBeGreaterThanOrEqual(gaps.length);
    const shown = (await get(id)).body.data;
    expect(shown.runs).toBe(fired.length);
    expect(shown.last_task_id).toBe(fired[fired.length - 1].id);

    await sleep(1500);
    expect(await tasksOf(t, id)).toHaveLength(fired.length);

    // Switched to a one-shot notification: cron and task are replaced.
    const changed = await client.patch<Schedule>(`${SCHEDULES}/${id}`, {
      at: inMs(60_000),
      notification: { message: 'later' },
      enabled: true,
    });
    expect(changed.status).toBe(200);
    expect(changed.body.data).toMatchObject({ cron: null, task: null, enabled: true });
    expect(changed.body.data.next_run_at).toBe(changed.body.data.at);

    const listed = await client.get<{ schedules: Schedule[]; pagination: { total: number } }>(SCHEDULES);
    expect(listed.body.data.pagination.total).toBe(1);
    expect((await client.delete(`${SCHEDULES}/${id}`)).status).toBe(200);
    expect((await get(id)).status).toBe(404);
  });

  it('a notification schedule reaches /events, /ws and the Apex log channel', async () => {
    const events = await eventsClient(t.url, t.keys.client);
    closers.push(() => events.socket.close());
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws?token=${t.keys.client}`);
    closers.push(() => ws.close());
    const viaWs: { type: string; data: Notice }[] = [];
    ws.on('message', (raw) => viaWs.push(JSON.parse(raw.toString()) as { type: string; data: Notice }));
    await new Promise((r) => ws.once('open', r));
    // The Apex log channel (admin keys).
    const log = new WebSocket(`${t.url.replace('http', 'ws')}/ABPlog/VCP_Key=${t.keys.admin}?source=schedule`);
    closers.push(() => log.close());
    const lines: { type: string; data: { source: string; level: string; message: string } }[] = [];
    log.on('message', (raw) => lines.push(JSON.parse(raw.toString()) as (typeof lines)[number]));
    await new Promise((r) => log.once('open', r));

    const made = await create({
      at: inMs(1000),
      notification: { message: 'Time to water the plants', severity: 'warning', node_id: 'garden' },
    });
    expect(made.status).toBe(201);
    const id = made.body.data.schedule_id;
    const notice = await until(
      () => events.notices.find((n) => n.schedule_id === id),
      (n) => n !== undefined,
    );
    expect(notice).toMatchObject({
      source: 'schedule',
      severity: 'warning',
      message: 'Time to water the plants',
      node_id: 'garden',
    });
    const frame = await until(
      () => viaWs.find((m) => m.type === 'notification' && m.data.schedule_id === id),
      (m) => m !== undefined,
    );
    expect(frame?.data.message).toBe('Time to water the plants');
    const line = await until(
      () => lines.find((l) => l.type === 'log' && l.data.message === 'Time to water the plants'),
      (l) => l !== undefined,
    );
    expect(line?.data).toMatchObject({ source: 'schedule', level: 'warn' });
    expect((await get(id)).body.data).toMatchObject({ runs: 1, enabled: false, last_task_id: null });
  });

  it.each([
    ['a bad cron expression', { cron: '61 * * * *', task: { prompt: 'x' } }, 'cron'],
    ['a cron that never fires', { cron: '0 0 30 2 *', task: { prompt: 'x' } }, 'cron'],
    ['an unknown time zone', { cron: '* * * * *', timezone: 'Mars/Olympus', task: { prompt: 'x' } }, 'timezone'],
    ['an at in the past', { at: new Date(Date.now() - 60_000).toISOString(), task: { prompt: 'x' } }, 'at'],
    ['an at that is no time', { at: 'tomorrow', task: { prompt: 'x' } }, 'at'],
    ['both cron and at', { cron: '* * * * *', at: inMs(60_000), task: { prompt: 'x' } }, 'cron'],
    ['neither cron nor at', { task: { prompt: 'x' } }, 'cron'],
    ['neither task nor notification', { cron: '* * * * *' }, 'task'],
    [
      'both task and notification',
      { cron: '* * * * *', task: { prompt: 'x' }, notification: { message: 'y' } },
      'task',
    ],
    [
      'a task body POST /tasks refuses',
      { cron: '* * * * *', task: { priority: 'extreme', prompt: 'x' } },
      'task.priority',
    ],
    ['a task with no prompt', { cron: '* * * * *', task: { type: 'x' } }, 'task.prompt'],
    ['an unknown task field', { cron: '* * * * *', task: { prompt: 'x', colour: 'red' } }, 'task.colour'],
    [
      'a task idempotency key',
      { cron: '* * * * *', task: { prompt: 'x', idempotency_key: 'k' } },
      'task.idempotency_key',
    ],
    ['a task run_at', { cron: '* * * * *', task: { prompt: 'x', run_at: inMs(1000) } }, 'task.run_at'],
    [
      'a notification severity',
      { cron: '* * * * *', notification: { message: 'x', severity: 'critical' } },
      'notification.severity',
    ],
    ['a notification with no message', { cron: '* * * * *', notification: {} }, 'notification.message'],
  ])('refuses %s with a 400 naming the field', async (_what, body, field) => {
    const res = await create(body);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(res.body.error?.details?.field).toBe(field);
  });

  it('refuses bad changes too, and re-enabling a spent one-shot without a new at', async () => {
    const made = await create({ cron: '0 0 * * *', timezone: 'Europe/Berlin', task: { prompt: 'x' } });
    expect(made.body.data.timezone).toBe('Europe/Berlin');
    const id = made.body.data.schedule_id;
    const patch = (body: Record<string, unknown>) => client.patch(`${SCHEDULES}/${id}`, body);
    expect((await patch({ cron: 'every day' })).body.error?.details?.field).toBe('cron');
    expect((await patch({ timezone: 'Nowhere/Land' })).body.error?.details?.field).toBe('timezone');
    expect((await patch({ at: '2001-01-01T00:00:00Z' })).body.error?.details?.field).toBe('at');
    expect((await patch({ cron: '* * * * *', at: inMs(60_000) })).body.error?.details?.field).toBe('cron');

    // Midnight in Berlin is 22:00 or 23:00 UTC.
    const next = new Date(made.body.data.next_run_at as string);
    expect([22, 23]).toContain(next.getUTCHours());
    expect(next.getUTCMinutes()).toBe(0);

    // A spent one-shot: enabling it needs a new `at`.
    const once = await create({ at: inMs(600), notification: { message: 'once' } });
    const onceId = once.body.data.schedule_id;
    await until(
      () => get(onceId),
      (r) => r.body.data.runs === 1,
    );
    const again = await client.patch(`${SCHEDULES}/${onceId}`, { enabled: true });
    expect(again.status).toBe(400);
    expect(again.body.error?.details?.field).toBe('at');
    const renewed = await client.patch<Schedule>(`${SCHEDULES}/${onceId}`, { at: inMs(60_000), enabled: true });
    expect(renewed.body.data).toMatchObject({ enabled: true });
  });

  it("keeps tenants apart: A does not see, change or delete B's schedules; tasks land in the schedule's tenant", async () => {
    const admin = apiClient(t, t.keys.admin);
    const keys: Record<string, string> = {};
    for (const id of ['sched-a', 'sched-b']) {
      expect((await admin.post('/api/v1/tenants', { id, name: id })).status).toBe(201);
      const key = await admin.post<{ key: string }>('/api/v1/api-keys', {
        name: `${id}-client`,
        roles: ['client'],
        tenant_id: id,
      });
      keys[id] = key.body.data.key;
    }
    const a = apiClient(t, keys['sched-a']);
    const b = apiClient(t, keys['sched-b']);
    const ofB = await create({ at: inMs(800), task: { prompt: 'for B only' } }, b);
    expect(ofB.status).toBe(201);
    const id = ofB.body.data.schedule_id;

    expect((await get(id, a)).status).toBe(404);
    expect((await a.patch(`${SCHEDULES}/${id}`, { enabled: false })).status).toBe(404);
    expect((await a.delete(`${SCHEDULES}/${id}`)).status).toBe(404);
    expect((await a.get<{ schedules: Schedule[] }>(SCHEDULES)).body.data.schedules).toEqual([]);
    expect((await b.get<{ schedules: Schedule[] }>(SCHEDULES)).body.data.schedules.map((s) => s.schedule_id)).toEqual([
      id,
    ]);

    const fired = await until(
      () => get(id, b),
      (r) => r.body.data.runs === 1,
    );
    const taskId = fired.body.data.last_task_id as string;
    expect((await b.get(`/api/v1/tasks/${taskId}`)).status).toBe(200);
    expect((await a.get(`/api/v1/tasks/${taskId}`)).status).toBe(404);
    const [row] = (await t.db.query(`SELECT tenant_id FROM tasks WHERE id = $1`, [taskId])) as { tenant_id: string }[];
    expect(row.tenant_id).toBe('sched-b');
  });

  it('a refused task (tenant limit) passes its slot and says why in last_error', async () => {
    const admin = apiClient(t, t.keys.admin);
    const tenant = { id: 'sched-full', name: 'sched-full', limits: { max_tasks: 1 } };
    expect((await admin.post('/api/v1/tenants', tenant)).status).toBe(201);
    const key = await admin.post<{ key: string }>('/api/v1/api-keys', {
      name: 'sched-full-client',
      roles: ['client'],
      tenant_id: 'sched-full',
    });
    const full = apiClient(t, key.body.data.key);
    expect((await full.post('/api/v1/tasks', { prompt: 'takes the only place' })).status).toBe(201);
    const made = await create({ at: inMs(600), task: { prompt: 'no room' } }, full);
    expect(made.status).toBe(201);
    const after = await until(
      () => get(made.body.data.schedule_id, full),
      (r) => r.body.data.last_error !== null,
    );
    expect(after.body.data).toMatchObject({ enabled: false, runs: 0, last_task_id: null, next_run_at: null });
    expect(after.body.data.last_error).toMatch(/TENANT_LIMIT_EXCEEDED/);
  });
});

describe('schedules across hubs and restarts (one database)', () => {
  let a: TestApp;
  let b: TestApp | undefined;
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('two hubs polling one database fire each slot exactly once', async () => {
    a = await startTestApp({ SCHEDULES_POLL_MS: '100' });
    b = await startTestApp({ SCHEDULES_POLL_MS: '100' }, { keepData: true });
    const onA = await eventsClient(a.url, a.keys.client);
    const onB = await eventsClient(b.url, b.keys.client);
    try {
      const tasks = await apiClient(a, a.keys.client).post<Schedule>(SCHEDULES, {
        cron: '* * * * * *',
        task: { prompt: 'once per slot' },
      });
      const notes = await apiClient(b, b.keys.client).post<Schedule>(SCHEDULES, {
        cron: '* * * * * *',
        notification: { message: 'once per slot' },
      });
      await sleep(4500);
      for (const s of [tasks, notes])
        await apiClient(a, a.keys.client).patch(`${SCHEDULES}/${s.body.data.schedule_id}`, { enabled: false });

      const fired = await tasksOf(a, tasks.body.data.schedule_id);
      expect(fired.length).toBeGreaterThanOrEqual(4);
      expect(new Set(fired.map((f) => f.slot)).size).toBe(fired.length);
      const shown = (await apiClient(a, a.keys.client).get<Schedule>(`${SCHEDULES}/${tasks.body.data.schedule_id}`))
        .body.data;
      expect(shown.runs).toBe(fired.length); // no slot claimed twice (an idempotent re-submit would still count)

      // Notifications have no idempotency key: a slot fired by both hubs would be heard twice.
      await sleep(200);
      const heard = [...onA.notices, ...onB.notices].filter((n) => n.schedule_id === notes.body.data.schedule_id);
      const slots = heard.map((n) => n.scheduled_for);
      expect(heard.length).toBeGreaterThanOrEqual(4);
      expect(new Set(slots).size).toBe(slots.length);
    } finally {
      onA.socket.close();
      onB.socket.close();
    }
  }, 30_000);

  it('a schedule survives a restart, and the slots missed while down fire once', async () => {
    await b?.close();
    b = undefined;
    await a.db.query('DELETE FROM schedules');
    const made = await apiClient(a, a.keys.client).post<Schedule>(SCHEDULES, {
      cron: '* * * * * *',
      task: { prompt: 'durable' },
    });
    const id = made.body.data.schedule_id;
    await until(
      () => tasksOf(a, id),
      (r) => r.length >= 1,
    );
    await a.close();
    const down = Date.now();
    await sleep(3500); // three or four slots pass with no hub
    a = await startTestApp({}, { keepData: true });
    const up = Date.now();
    await sleep(2500);
    await apiClient(a, a.keys.client).patch(`${SCHEDULES}/${id}`, { enabled: false });

    const fired = await tasksOf(a, id);
    const missed = fired.filter((f) => Date.parse(f.slot) > down && Date.parse(f.slot) < up - 1000);
    expect(missed).toHaveLength(1); // once, not once per missed slot
    const resumed = fired.filter((f) => Date.parse(f.slot) >= up);
    expect(resumed.length).toBeGreaterThanOrEqual(1); // then on from now
    expect(new Set(fired.map((f) => f.slot)).size).toBe(fired.length);
  }, 30_000);
});

// A notification fired on hub A reaches an /events client of hub B through Redis (the Socket.IO
// adapter). Needs Redis and the built app, like two-hubs.
const skipReason = !process.env.REDIS_URL ? 'REDIS_URL is not set' : HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[schedules across processes] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('schedules across hub processes with Redis', () => {
  let one: HubProcess;
  let two: HubProcess;
  afterAll(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
  }, 30_000);

  it('a notification fired on hub A reaches /events and /ws clients of hub B', async () => {
    const env = {
      DATABASE_URL: await createEmptyDatabase('schedules_two_hubs'),
      REDIS_URL: process.env.REDIS_URL as string,
      AUTH_REQUIRED: 'false',
    };
    one = await new HubProcess({ ...env, SCHEDULES_POLL_MS: '200' }).start();
    two = await new HubProcess({ ...env, SCHEDULES_POLL_MS: '0' }).start(); // B never fires
    const onB = await eventsClient(two.url);
    const ws = new WebSocket(`${two.url.replace('http', 'ws')}/ws`);
    const viaWs: { type: string; data: Notice }[] = [];
    ws.on('message', (raw) => viaWs.push(JSON.parse(raw.toString()) as { type: string; data: Notice }));
    await new Promise((r) => ws.once('open', r));
    try {
      const made = await apiClient({ url: two.url } as TestApp, undefined).post<Schedule>(SCHEDULES, {
        at: inMs(1000),
        notification: { message: 'from A to B' },
      });
      expect(made.status).toBe(201);
      const id = made.body.data.schedule_id;
      await until(
        () => onB.notices.find((n) => n.schedule_id === id),
        (n) => n !== undefined,
      );
      await until(
        () => viaWs.find((m) => m.type === 'notification' && m.data.schedule_id === id),
        (m) => m !== undefined,
      );
    } finally {
      onB.socket.close();
      ws.close();
    }
  }, 60_000);
});
