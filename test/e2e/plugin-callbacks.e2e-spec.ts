import { createHmac, randomUUID } from 'node:crypto';
import { EventBus, type DomainEvents } from '../../src/common/events/event-bus.js';
import { Dispatcher } from '../../src/modules/dispatch/dispatcher.service.js';
import { LeaseSweeper } from '../../src/modules/tasks/lease-sweeper.service.js';
import { TaskWaiters } from '../../src/modules/tasks/task-waiters.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface Issued {
  name: string;
  secret: string;
  token: string;
  created_at: string;
}

interface Signed {
  body: string;
  headers: Record<string, string>;
}

/** Standard Webhooks headers for `body` (a string sent byte for byte), computed as docs/plugin-callbacks.md says. */
function signed(secret: string, body: string, opts: { id?: string; at?: number } = {}): Signed {
  const id = opts.id ?? `msg_${randomUUID()}`;
  const ts = String(opts.at ?? Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { body, headers: { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` } };
}

async function post(t: TestApp, path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

describe('plugins and signed plugin callbacks', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const devices: TestDevice[] = [];
  const alerts: DomainEvents['hub.alert'][] = [];

  beforeAll(async () => {
    t = await startTestApp({
      PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE: '10000',
      RETRY_BACKOFF_BASE_MS: '1',
      RETRY_BACKOFF_CAP_MS: '2',
    });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
    t.app.get(EventBus).on('hub.alert', (a) => alerts.push(a));
  });
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    alerts.length = 0;
    await truncate(t.db, 'task_events, tasks, nodes, plugins, plugin_deliveries');
  });
  afterAll(() => t.close());

  const createPlugin = async (name: string): Promise<Issued> => {
    const res = await admin.post<Issued>('/api/v1/plugins', { name });
    expect(res.status).toBe(201);
    return res.body.data;
  };
  const awaitingTask = async (plugin: string, extra: Record<string, unknown> = {}): Promise<Task> => {
    const res = await client.post<Task>('/api/v1/tasks', {
      prompt: 'organize files',
      awaits_callback: plugin,
      ...extra,
    });
    expect(res.status).toBe(201);
    return res.body.data;
  };
  const task = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;
  /**
   * Sweeps until the task shows `done` (2 s at most). The hub's own periodic sweep may hold the
   * expired row at that moment (SKIP LOCKED: this sweep then passes it by) and commit just after.
   */
  const sweepUntil = async (id: string, done: (x: Task) => boolean): Promise<void> => {
    for (const deadline = Date.now() + 2000; Date.now() < deadline;) {
      await t.app.get(LeaseSweeper).sweep();
      if (done(await task(id))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const events = async (id: string, type: string): Promise<number> => {
    const rows: { n: number }[] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = $2`,
      [id, type],
    );
    return rows[0].n;
  };
  const callback = (plugin: string, taskId: string, s: Signed) =>
    post(t, `/plugin-callback/${plugin}/${taskId}`, s.body, s.headers);
  const success = JSON.stringify({
    status: 'success',
    output: { summary: '已完成文件整理', details: [{ path: 'D:/docs' }] },
  });

  it('creates a plugin: secret and token shown once, never in GET', async () => {
    const p = await createPlugin('file-organizer');
    expect(p.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(p.secret.slice(6), 'base64')).toHaveLength(32);
    expect(typeof p.token).toBe('string');
    expect(p.token.length).toBeGreaterThan(20);
    const one = await admin.get<Record<string, unknown>>('/api/v1/plugins/file-organizer');
    expect(one.status).toBe(200);
    expect(one.body.data).toMatchObject({ name: 'file-organizer' });
    expect(JSON.stringify(one.body.data)).not.toContain(p.secret.slice(6));
    expect(one.body.data).not.toHaveProperty('secret');
    expect(one.body.data).not.toHaveProperty('token');
    const list = await admin.get<{ plugins: Record<string, unknown>[]; pagination: { total: number } }>(
      '/api/v1/plugins?limit=10',
    );
    expect(list.body.data.pagination).toMatchObject({ total: 1, limit: 10, offset: 0, has_more: false });
    expect(JSON.stringify(list.body.data)).not.toContain(p.token);
    expect((await admin.post('/api/v1/plugins', { name: 'file-organizer' })).status).toBe(409);
    const bad = await admin.post('/api/v1/plugins', { name: 'Bad Name' });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.details?.field).toBe('name');
    expect((await client.post('/api/v1/plugins', { name: 'not-admin' })).status).toBe(403);
    expect((await admin.get('/api/v1/plugins/nope')).status).toBe(404);
    expect((await admin.delete('/api/v1/plugins/file-organizer')).status).toBe(200);
    expect((await admin.get('/api/v1/plugins/file-organizer')).status).toBe(404);
  });

  it('a task with awaits_callback runs held by plugin:<name>, is never dispatched, and a signed success completes it', async () => {
    const p = await createPlugin('organizer');
    const d = new TestDevice(t.url, t.keys.worker);
    devices.push(d);
    await d.register('dev-1', { capacity: 5 });
    const created = await awaitingTask('organizer');
    expect(created).toMatchObject({
      state: 'running',
      worker_id: 'plugin:organizer',
      node_id: null,
      attempt: 1,
      awaits_callback: 'organizer',
    });
    expect(created.lease_expires_at).not.toBeNull();
    await t.app.get(Dispatcher).runRound();
    await new Promise((r) => setTimeout(r, 100));
    expect(d.received.filter((r) => r.event === 'new_task')).toHaveLength(0);

    const res = await callback('organizer', created.task_id, signed(p.secret, success));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, data: { task_id: created.task_id, status: 'completed' } });
    const done = await task(created.task_id);
    expect(done).toMatchObject({
      state: 'completed',
      progress: 100,
      result: { summary: '已完成文件整理', details: [{ path: 'D:/docs' }] },
    });
    expect(await events(created.task_id, 'completed')).toBe(1);
  });

  it('unknown plugin in awaits_callback is a 400 naming the field', async () => {
    const res = await client.post('/api/v1/tasks', { prompt: 'x', awaits_callback: 'ghost' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'awaits_callback' } });
    const rows: unknown[] = await t.db.query(`SELECT 1 FROM tasks`);
    expect(rows).toHaveLength(0);
  });

  it('verifies the signature over the raw body bytes', async () => {
    const p = await createPlugin('raw');
    const created = await awaitingTask('raw');
    const s = signed(p.secret, success);
    const reformatted = JSON.stringify(JSON.parse(success), null, 2); // same JSON, other bytes
    const res = await callback('raw', created.task_id, { body: reformatted, headers: s.headers });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect((await task(created.task_id)).state).toBe('running');
    // A body with unusual whitespace is fine when that is what was signed.
    const spaced = `{ "status" :  "success",\n "output": {"n": 1} }`;
    const good = signed(p.secret, spaced);
    // Several signatures in the header: any valid one passes.
    good.headers['webhook-signature'] =
      `v1,${Buffer.alloc(32).toString('base64')} ${good.headers['webhook-signature']}`;
    const ok = await callback('raw', created.task_id, good);
    expect(ok.status).toBe(200);
    expect((await task(created.task_id)).result).toEqual({ n: 1 });
  });

  it('refuses stale, future, wrongly signed and unsigned callbacks with 401, changes nothing, and raises an alert', async () => {
    const p = await createPlugin('strict');
    const created = await awaitingTask('strict');
    const now = Math.floor(Date.now() / 1000);
    // Well past the 300 s tolerance on both sides: the hub's clock moves on while the
    // cases run, so `now + 301` can be within tolerance by the time it arrives (the
    // exact boundary is pinned by test/unit/webhook-signature.spec.ts).
    const cases: [string, Signed][] = [
      ['stale', signed(p.secret, success, { at: now - 600 })],
      ['future', signed(p.secret, success, { at: now + 600 })],
      ['wrong secret', signed(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, success)],
      ['no headers', { body: success, headers: {} }],
      ['no signature', { body: success, headers: { 'webhook-id': 'x', 'webhook-timestamp': String(now) } }],
      [
        'garbage signature',
        {
          body: success,
          headers: { 'webhook-id': 'x', 'webhook-timestamp': String(now), 'webhook-signature': 'v1,AAAA v2,zzz' },
        },
      ],
      ['wrong token', { body: success, headers: { Authorization: 'Bearer nope' } }],
    ];
    for (const [name, s] of cases) {
      const res = await callback('strict', created.task_id, s);
      expect([name, res.status, res.body.error?.code]).toEqual([name, 401, 'UNAUTHORIZED']);
    }
    expect(await task(created.task_id)).toMatchObject({ state: 'running', worker_id: 'plugin:strict' });
    const rows: unknown[] = await t.db.query(`SELECT 1 FROM plugin_deliveries`);
    expect(rows).toHaveLength(0);
    expect(alerts).toHaveLength(cases.length);
    expect(alerts[0]).toMatchObject({
      severity: 'warning',
      source: 'plugin',
      plugin: 'strict',
      task_id: created.task_id,
      message: 'plugin callback refused: stale timestamp',
    });
    expect(typeof alerts[0].source_ip).toBe('string');
    expect(alerts[1].message).toBe('plugin callback refused: timestamp in the future');
    expect(alerts[2].message).toBe('plugin callback refused: invalid signature');
    // Still completes with a good one within the window (±300 s).
    expect((await callback('strict', created.task_id, signed(p.secret, success, { at: now - 290 }))).status).toBe(200);
  });

  it('the bearer token works instead of a signature', async () => {
    const p = await createPlugin('tokened');
    const created = await awaitingTask('tokened');
    const res = await callback('tokened', created.task_id, {
      body: JSON.stringify({ status: 'success', result: { ok: true } }),
      headers: { Authorization: `Bearer ${p.token}` },
    });
    expect(res.status).toBe(200);
    expect(await task(created.task_id)).toMatchObject({ state: 'completed', result: { ok: true } });
  });

  it('unknown plugin → 401; another plugin signing for its own name → 409; unknown task → 404; non-awaiting task → 409', async () => {
    const a = await createPlugin('alpha');
    const b = await createPlugin('beta');
    const created = await awaitingTask('alpha');
    // Path names alpha, signed with beta's secret: not alpha → 401.
    expect((await callback('alpha', created.task_id, signed(b.secret, success))).status).toBe(401);
    // Path names beta, validly signed by beta, but the task awaits alpha → 409.
    const wrong = await callback('beta', created.task_id, signed(b.secret, success));
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe('CONFLICT');
    // Unknown plugin: 401, not 404 (plugin names are not revealed).
    const ghost = await callback('ghost', created.task_id, signed(a.secret, success));
    expect(ghost.status).toBe(401);
    expect(alerts.some((x) => x.message === 'plugin callback refused: unknown plugin')).toBe(true);
    expect((await callback('alpha', randomUUID(), signed(a.secret, success))).status).toBe(404);
    expect((await callback('alpha', 'not-a-uuid', signed(a.secret, success))).status).toBe(404);
    const plain = (await client.post<Task>('/api/v1/tasks', { prompt: 'ordinary' })).body.data;
    expect((await callback('alpha', plain.task_id, signed(a.secret, success))).status).toBe(409);
    expect(await task(created.task_id)).toMatchObject({ state: 'running' });
    // The refused deliveries were not recorded: the same webhook-id applies once the request is right.
    const s = signed(a.secret, success, { id: 'retry-me' });
    expect((await callback('alpha', plain.task_id, s)).status).toBe(409);
    expect((await callback('alpha', created.task_id, signed(a.secret, success, { id: 'retry-me' }))).body.data).toEqual(
      { task_id: created.task_id, status: 'completed' },
    );
  });

  it('an unknown plugin is refused in the words a known one gets for the same credentials: names are not revealed (docs/security.md)', async () => {
    await createPlugin('known');
    const created = await awaitingTask('known');
    const other = await createPlugin('other');
    const stale = Math.floor(Date.now() / 1000) - 3600;
    const attempts: [string, Signed][] = [
      ['no credentials', { body: success, headers: {} }],
      ['a wrong token', { body: success, headers: { Authorization: 'Bearer not-the-token' } }],
      ['a signature by another secret', signed(other.secret, success)],
      ['a stale timestamp', signed(other.secret, success, { at: stale })],
      [
        'webhook headers without a signature',
        { body: success, headers: { 'webhook-id': 'x', 'webhook-timestamp': '1' } },
      ],
    ];
    for (const [what, s] of attempts) {
      const asKnown = await callback('known', created.task_id, s);
      const asGhost = await callback('ghost-plugin', created.task_id, s);
      expect({ what, status: asKnown.status, error: asKnown.body.error }).toEqual({
        what,
        status: 401,
        error: expect.objectContaining({ code: 'UNAUTHORIZED' }),
      });
      expect({ what, status: asGhost.status, message: asGhost.body.error.message }).toEqual({
        what,
        status: asKnown.status,
        message: asKnown.body.error.message,
      });
    }
    // The operator's alert still says which it was.
    expect(alerts.filter((a) => a.plugin === 'ghost-plugin').map((a) => a.message)).toEqual(
      attempts.map(() => 'plugin callback refused: unknown plugin'),
    );
    expect(await task(created.task_id)).toMatchObject({ state: 'running' });
  });

  it('a bad body is a 400 naming the field, but only after authentication', async () => {
    const p = await createPlugin('bodies');
    const created = await awaitingTask('bodies');
    const bad: [string, string][] = [
      ['{}', 'status'],
      ['{"status": 1}', 'status'],
      ['{"status": "done"}', 'status'],
      ['[1, 2]', 'body'],
      ['{"status": "failed", "error": 5}', 'error'],
    ];
    for (const [body, field] of bad) {
      const res = await callback('bodies', created.task_id, signed(p.secret, body));
      expect([body, res.status, res.body.error?.code, res.body.error?.details?.field]).toEqual([
        body,
        400,
        'VALIDATION_ERROR',
        field,
      ]);
    }
    expect((await callback('bodies', created.task_id, { body: '{}', headers: {} })).status).toBe(401);
    expect(await task(created.task_id)).toMatchObject({ state: 'running', attempt: 1, retry_count: 0 });
  });

  it('a repeated webhook-id is answered duplicate and applied once, also under 20 concurrent deliveries', async () => {
    const p = await createPlugin('dupes');
    const first = await awaitingTask('dupes');
    const s = signed(p.secret, success);
    expect((await callback('dupes', first.task_id, s)).body.data).toEqual({
      task_id: first.task_id,
      status: 'completed',
    });
    const again = await callback('dupes', first.task_id, s);
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ task_id: first.task_id, duplicate: true });
    expect(await events(first.task_id, 'completed')).toBe(1);

    // A failed report with retries left leaves the task running: only the delivery record stops the repeat.
    const second = await awaitingTask('dupes', { max_retries: 5 });
    const fail = signed(p.secret, JSON.stringify({ status: 'failed', error: 'disk full' }));
    const answers = await Promise.all(Array.from({ length: 20 }, () => callback('dupes', second.task_id, fail)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(answers.filter((a) => a.body.data.duplicate === true)).toHaveLength(19);
    expect(await events(second.task_id, 'attempt_failed')).toBe(1);
    expect(await task(second.task_id)).toMatchObject({ state: 'running', retry_count: 1, attempt: 2 });
    const deliveries: unknown[] = await t.db.query(`SELECT 1 FROM plugin_deliveries WHERE plugin = 'dupes'`);
    expect(deliveries).toHaveLength(2);
  });

  it('rotation: the old secret and token work during the grace, not after; the new ones work', async () => {
    const old = await createPlugin('rotor');
    const rotated = await admin.post<Issued & { previous_valid_until: string }>('/api/v1/plugins/rotor/rotate');
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.data;
    expect(fresh.secret).not.toBe(old.secret);
    expect(fresh.token).not.toBe(old.token);
    expect(new Date(fresh.previous_valid_until).getTime()).toBeGreaterThan(Date.now() + 86_000_000);

    const a = await awaitingTask('rotor');
    expect((await callback('rotor', a.task_id, signed(old.secret, success))).status).toBe(200);
    const b = await awaitingTask('rotor');
    expect(
      (await callback('rotor', b.task_id, { body: success, headers: { Authorization: `Bearer ${old.token}` } })).status,
    ).toBe(200);

    await t.db.query(`UPDATE plugins SET rotated_until = now() - interval '1 second' WHERE name = 'rotor'`);
    const c = await awaitingTask('rotor');
    expect((await callback('rotor', c.task_id, signed(old.secret, success))).status).toBe(401);
    expect(
      (await callback('rotor', c.task_id, { body: success, headers: { Authorization: `Bearer ${old.token}` } })).status,
    ).toBe(401);
    expect((await callback('rotor', c.task_id, signed(fresh.secret, success))).status).toBe(200);
    const d = await awaitingTask('rotor');
    expect(
      (await callback('rotor', d.task_id, { body: success, headers: { Authorization: `Bearer ${fresh.token}` } }))
        .status,
    ).toBe(200);
  });

  it('failed callback: retries left → the wait is re-armed (not queued); none left → failed with the error', async () => {
    const p = await createPlugin('flaky');
    const d = new TestDevice(t.url, t.keys.worker);
    devices.push(d);
    await d.register('dev-2', { capacity: 5 });
    const retrying = await awaitingTask('flaky', { max_retries: 2 });
    const res = await callback(
      'flaky',
      retrying.task_id,
      signed(p.secret, JSON.stringify({ status: 'failed', error: { message: 'quota', code: 42 } })),
    );
    expect(res.body.data).toEqual({ task_id: retrying.task_id, status: 'running' });
    const rearmed = await task(retrying.task_id);
    expect(rearmed).toMatchObject({
      state: 'running',
      worker_id: 'plugin:flaky',
      retry_count: 1,
      attempt: 2,
      error: { code: 'PLUGIN_FAILED', message: 'quota' },
    });
    await t.app.get(Dispatcher).runRound();
    expect(d.received.filter((r) => r.event === 'new_task')).toHaveLength(0);
    // The re-armed wait takes a callback again.
    expect((await callback('flaky', retrying.task_id, signed(p.secret, success))).body.data.status).toBe('completed');

    const last = await awaitingTask('flaky', { max_retries: 0 });
    const final = await callback(
      'flaky',
      last.task_id,
      signed(p.secret, JSON.stringify({ status: 'failed', error: 'the disk is full' })),
    );
    expect(final.body.data).toEqual({ task_id: last.task_id, status: 'failed' });
    expect(await task(last.task_id)).toMatchObject({
      state: 'failed',
      error: { code: 'PLUGIN_FAILED', message: 'the disk is full', plugin: 'flaky' },
    });
    // A finished awaiting task is not re-queued to a node by a manual retry.
    expect((await client.post(`/api/v1/tasks/${last.task_id}/retry`, { force: true })).status).toBe(409);
  });

  it('lease expiry of an awaiting task re-arms the wait while retries remain, then times out; never dispatched', async () => {
    await createPlugin('slow');
    const d = new TestDevice(t.url, t.keys.worker);
    devices.push(d);
    await d.register('dev-3', { capacity: 5 });
    const created = await awaitingTask('slow', { max_retries: 1, timeout_seconds: 1 });
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [
      created.task_id,
    ]);
    await sweepUntil(created.task_id, (x) => x.retry_count === 1);
    expect(await task(created.task_id)).toMatchObject({
      state: 'running',
      worker_id: 'plugin:slow',
      retry_count: 1,
      attempt: 2,
    });
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [
      created.task_id,
    ]);
    await sweepUntil(created.task_id, (x) => x.state !== 'running');
    expect(await task(created.task_id)).toMatchObject({ state: 'timed_out', retry_count: 1 });
    expect(d.received.filter((r) => r.event === 'new_task')).toHaveLength(0);
  });

  it("a node's task_result {status: 'pending', plugin} hands the task to the plugin and frees the node; the callback completes it", async () => {
    const p = await createPlugin('hybrid');
    const d = new TestDevice(t.url, t.keys.worker);
    devices.push(d);
    await d.register('hybrid-node', { capacity: 1 });
    const created = (await client.post<Task>('/api/v1/tasks', { type: 'organize', prompt: 'sort D:/docs' })).body.data;
    const assigned = await d.next('new_task');
    expect(assigned.task_id).toBe(created.task_id);

    const unknown = await d.request('task_result', { task_id: created.task_id, status: 'pending', plugin: 'ghost' });
    expect(unknown).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'plugin' } },
    });
    expect(await task(created.task_id)).toMatchObject({ node_id: 'hybrid-node' });

    const ack = await d.request('task_result', {
      task_id: created.task_id,
      attempt: assigned.attempt,
      result: { taskId: created.task_id, status: 'pending', plugin: 'hybrid' },
    });
    expect(ack).toMatchObject({ success: true, status: 'running', plugin: 'hybrid' });
    expect(await task(created.task_id)).toMatchObject({ state: 'running', worker_id: 'plugin:hybrid', node_id: null });
    // The node is free: the next task goes to it.
    const next = (await client.post<Task>('/api/v1/tasks', { prompt: 'another' })).body.data;
    expect((await d.next('new_task')).task_id).toBe(next.task_id);

    const res = await callback('hybrid', created.task_id, signed(p.secret, success));
    expect(res.body.data).toEqual({ task_id: created.task_id, status: 'completed' });
    expect(await task(created.task_id)).toMatchObject({ state: 'completed', result: { summary: '已完成文件整理' } });
  });

  it('wait_seconds: answers within ~100 ms of the completion, after N s when nothing happens, 400 past 60', async () => {
    const p = await createPlugin('waiter');
    const created = await awaitingTask('waiter');
    const started = Date.now();
    const waiting = client.get<Task>(`/api/v1/tasks/${created.task_id}?wait_seconds=10`);
    await new Promise((r) => setTimeout(r, 300));
    let completedAt = 0;
    const cb = callback('waiter', created.task_id, signed(p.secret, success)).then((r) => {
      completedAt = Date.now();
      return r;
    });
    const answer = await waiting;
    const answeredAt = Date.now();
    await cb;
    expect(answer.status).toBe(200);
    expect(answer.body.data.state).toBe('completed');
    expect(answeredAt - started).toBeLessThan(2000);
    expect(Math.abs(answeredAt - completedAt)).toBeLessThan(100);

    // Finished already: at once.
    const at = Date.now();
    expect((await client.get<Task>(`/api/v1/tasks/${created.task_id}?wait_seconds=30`)).body.data.state).toBe(
      'completed',
    );
    expect(Date.now() - at).toBeLessThan(500);

    // Nothing happens: the current task after N seconds.
    const idle = await awaitingTask('waiter');
    const t0 = Date.now();
    const still = await client.get<Task>(`/api/v1/tasks/${idle.task_id}?wait_seconds=1.2`);
    const took = Date.now() - t0;
    expect(still.body.data.state).toBe('running');
    expect(took).toBeGreaterThanOrEqual(1150);
    expect(took).toBeLessThan(2500);

    for (const bad of ['61', 'abc', '0', '-1']) {
      const res = await client.get(`/api/v1/tasks/${idle.task_id}?wait_seconds=${bad}`);
      expect([bad, res.status, res.body.error?.details?.field]).toEqual([bad, 400, 'wait_seconds']);
    }
  });

  it('wait_seconds: a task finished by another process is seen by the 1 s re-check; a client that leaves drops its waiter', async () => {
    const created = await awaitingTask((await createPlugin('elsewhere')).name);
    const waiting = client.get<Task>(`/api/v1/tasks/${created.task_id}?wait_seconds=10`);
    await new Promise((r) => setTimeout(r, 200));
    // Finished behind this process's back (no event on its bus), as another hub would.
    await t.db.query(`UPDATE tasks SET status = 'completed', completed_at = now() WHERE id = $1`, [created.task_id]);
    const t0 = Date.now();
    const answer = await waiting;
    expect(answer.body.data.state).toBe('completed');
    expect(Date.now() - t0).toBeLessThan(1500);

    const other = await awaitingTask('elsewhere');
    const waiters = t.app.get(TaskWaiters);
    const ac = new AbortController();
    const gone = fetch(`${t.url}/api/v1/tasks/${other.task_id}?wait_seconds=30`, {
      headers: { Authorization: `Bearer ${t.keys.client}` },
      signal: ac.signal,
    }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 200));
    expect(waiters.size).toBe(1);
    ac.abort();
    expect(await gone).toBe('aborted');
    await new Promise((r) => setTimeout(r, 200));
    expect(waiters.size).toBe(0);
  });
});

describe('plugin callback rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE: '3' });
  });
  afterAll(() => t.close());

  it('the 4th callback a minute from the same address for the same plugin is 429 with Retry-After', async () => {
    const admin = apiClient(t, t.keys.admin);
    const client = apiClient(t, t.keys.client);
    const p = (await admin.post<Issued>('/api/v1/plugins', { name: 'limited' })).body.data;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push(
        (await client.post<Task>('/api/v1/tasks', { prompt: `t${i}`, awaits_callback: 'limited' })).body.data.task_id,
      );
    const body = JSON.stringify({ status: 'success' });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof post>> | undefined;
    for (const id of ids) {
      last = await post(t, `/plugin-callback/limited/${id}`, body, signed(p.secret, body).headers);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last?.body.error.code).toBe('RATE_LIMITED');
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const rows: { status: string }[] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [ids[3]]);
    expect(rows[0].status).toBe('running');
  });

  // Last in this app: the hub is told to stop.
  it('a draining hub answers its waiting requests at once', async () => {
    const client = apiClient(t, t.keys.client);
    const id = (await client.post<Task>('/api/v1/tasks', { prompt: 'idle', awaits_callback: 'limited' })).body.data
      .task_id;
    const t0 = Date.now();
    const waiting = client.get<Task>(`/api/v1/tasks/${id}?wait_seconds=30`);
    await new Promise((r) => setTimeout(r, 200));
    t.app.get(EventBus).publish('hub.shutdown', { reason: 'test' });
    const answer = await waiting;
    expect(answer.body.data.state).toBe('running');
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

// Seed 001 §7.3 step 4 / §7.4 (audit 001-051): the callback named in `task_assign` works while
// the node holds the task, without the node first answering `pending`. A raw-WebSocket Apex node.
describe('the callback given in task_assign, while the node holds the task', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const sockets: ApexSocket[] = [];
  const capacity: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE: '10000',
      RETRY_BACKOFF_BASE_MS: '1',
      RETRY_BACKOFF_CAP_MS: '2',
      // Only events start dispatch rounds here: a freed slot must be announced (node.capacity).
      DISPATCH_SAFETY_TICK_MS: '600000',
    });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
    t.app.get(EventBus).on('node.capacity', ({ nodeId }) => capacity.push(nodeId));
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.close());
    capacity.length = 0;
    await truncate(t.db, 'task_events, tasks, nodes, plugins, plugin_deliveries');
  });
  afterAll(() => t.close());

  const node = async (id: string): Promise<ApexSocket> => {
    const s = await ApexSocket.open(
      `${t.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=${encodeURIComponent(t.keys.worker)}`,
    );
    sockets.push(s);
    expect((await s.request('node_register', { node_id: id, type: 'worker', capacity: 1 })).type).toBe(
      'register_success',
    );
    return s;
  };
  const task = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;
  const events = async (id: string, type: string): Promise<number> => {
    const rows: { n: number }[] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = $2`,
      [id, type],
    );
    return rows[0].n;
  };
  const until = async (f: () => Promise<boolean>, ms = 5000): Promise<void> => {
    for (const deadline = Date.now() + ms; !(await f()); await new Promise((r) => setTimeout(r, 25)))
      if (Date.now() > deadline) throw new Error('condition not met in time');
  };
  const plugin = async (name: string): Promise<Issued> =>
    (await admin.post<Issued>('/api/v1/plugins', { name })).body.data;
  const submit = async (metadata: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> =>
    (await client.post<Task>('/api/v1/tasks', { type: 'organize', prompt: 'sort D:/docs', metadata, ...extra })).body
      .data.task_id;
  const assigned = (s: ApexSocket, id: string, attempt: number) =>
    s.nextOf('task_assign', (f) => f.data.task_id === id && f.data.attempt === attempt);
  const send = (path: string, secret: string, body: unknown, headers: Record<string, string> = {}) => {
    const s = signed(secret, JSON.stringify(body));
    return post(t, path, s.body, { ...s.headers, ...headers });
  };

  it('a signed success on the task_assign callback completes the task the node holds, frees the node, and the node’s later result changes nothing', async () => {
    const p = await plugin('FileOrganizer');
    const n = await node('apex-cb');
    // metadata names the plugin in lower case: it is the same plugin.
    const id = await submit({ plugin: 'fileorganizer' });
    const assign = await assigned(n, id, 1);
    expect(assign.data.callback).toBe(`/plugin-callback/fileorganizer/${id}`);
    n.send('ack', undefined, assign.id);
    await until(async () => (await task(id)).state === 'running');
    // The node is full: the next task waits for its slot.
    const next = await submit({});
    await new Promise((r) => setTimeout(r, 200));
    expect((await task(next)).state).toBe('pending');

    // No `pending` from the node: the plugin calls back on the path it was given.
    const res = await send(String(assign.data.callback), p.secret, {
      status: 'success',
      output: { summary: '已完成文件整理' },
      attempt: 1,
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ task_id: id, status: 'completed' });
    expect(await task(id)).toMatchObject({
      state: 'completed',
      node_id: 'apex-cb',
      attempt: 1,
      result: { summary: '已完成文件整理' },
    });
    expect(await events(id, 'completed')).toBe(1);
    expect(capacity).toContain('apex-cb');
    // Its slot is free: the waiting task goes to it.
    expect((await n.nextOf('task_assign', (f) => f.data.task_id === next)).data.attempt).toBe(1);

    // The node reports the attempt afterwards: the usual answer for a task it no longer holds.
    const late = await n.request('task_result', { task_id: id, attempt: 1, status: 'success', result: { by: 'node' } });
    expect(late).toMatchObject({ type: 'error', data: { code: 'CONFLICT' } });
    expect(await task(id)).toMatchObject({ state: 'completed', result: { summary: '已完成文件整理' } });
    expect(await events(id, 'completed')).toBe(1);
    // And the callback again (a new delivery) is refused: nobody holds the task now.
    expect((await send(String(assign.data.callback), p.secret, { status: 'success' })).status).toBe(409);
  });

  it('attempts fence the callback: an older one is 409 STALE_ATTEMPT; a failure is retried as the node’s own would be', async () => {
    const p = await plugin('organizer');
    const n = await node('apex-fence');
    const id = await submit({ plugin: 'organizer' }, { max_retries: 3 });
    const cb = `/plugin-callback/organizer/${id}`;
    await assigned(n, id, 1);
    // Attempt 1 fails by the plugin's callback: the retry policy re-queues it, the node gets attempt 2.
    const failed = await send(cb, p.secret, { status: 'failed', error: 'disk full', attempt: 1 });
    expect(failed.status).toBe(200);
    expect(['pending', 'dispatched']).toContain(failed.body.data.status);
    await assigned(n, id, 2);
    expect(capacity).toContain('apex-fence');
    expect(await task(id)).toMatchObject({
      retry_count: 1,
      attempt: 2,
      node_id: 'apex-fence',
      error: { code: 'PLUGIN_FAILED', plugin: 'organizer', message: 'disk full', attempt: 1, holder: 'apex-fence' },
    });

    // A late callback for attempt 1 (body or header) is refused and changes nothing.
    const stale = await send(cb, p.secret, { status: 'success', output: 'old', attempt: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'STALE_ATTEMPT', details: { attempt: 1, current_attempt: 2 } });
    const staleHeader = await send(cb, p.secret, { status: 'success', output: 'old' }, { 'x-taskhub-attempt': '1' });
    expect([staleHeader.status, staleHeader.body.error.code]).toEqual([409, 'STALE_ATTEMPT']);
    expect(await events(id, 'stale_report_rejected')).toBe(2);
    const disagree = await send(cb, p.secret, { status: 'success', attempt: 2 }, { 'x-taskhub-attempt': '3' });
    expect([disagree.status, disagree.body.error.details.field]).toEqual([400, 'attempt']);
    const badAttempt = await send(cb, p.secret, { status: 'success', attempt: 'two' });
    expect([badAttempt.status, badAttempt.body.error.details.field]).toEqual([400, 'attempt']);
    expect(await task(id)).toMatchObject({ state: 'dispatched', attempt: 2 });

    // Without an attempt the callback is for the current one.
    const done = await send(cb, p.secret, { status: 'success', output: 'new' });
    expect(done.body.data).toEqual({ task_id: id, status: 'completed' });
    expect(await task(id)).toMatchObject({ state: 'completed', attempt: 2, result: 'new' });
    expect(await events(id, 'completed')).toBe(1);
    // The node's report of attempt 1 is from an older attempt.
    const late = await n.request('task_result', { task_id: id, attempt: 1, status: 'success', result: {} });
    expect(late).toMatchObject({ type: 'error', data: { code: 'STALE_ATTEMPT' } });
  });

  it('out of retries, a failed callback fails the task; wrong signatures, other plugins and tasks that name none are refused', async () => {
    const p = await plugin('organizer');
    const other = await plugin('other');
    const n = await node('apex-refuse');
    const id = await submit({ plugin: 'organizer' }, { max_retries: 0 });
    const cb = `/plugin-callback/organizer/${id}`;
    await assigned(n, id, 1);

    const forged = await send(cb, other.secret, { status: 'success' });
    expect([forged.status, forged.body.error.code]).toEqual([401, 'UNAUTHORIZED']);
    // Another plugin, signing correctly for its own name: the task names organizer.
    const wrong = await send(`/plugin-callback/other/${id}`, other.secret, { status: 'success' });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error).toMatchObject({
      code: 'CONFLICT',
      details: { state: 'dispatched', awaiting: 'organizer' },
    });
    expect(await task(id)).toMatchObject({ state: 'dispatched', node_id: 'apex-refuse' });

    const failed = await send(cb, p.secret, { status: 'failed', error: { message: 'quota' } });
    expect(failed.body.data).toEqual({ task_id: id, status: 'failed' });
    expect(await task(id)).toMatchObject({ state: 'failed', error: { code: 'PLUGIN_FAILED', message: 'quota' } });
    expect(capacity).toContain('apex-refuse');

    // A task whose metadata names no plugin is not the plugin's to settle.
    const plain = await submit({});
    await assigned(n, plain, 1);
    expect((await send(`/plugin-callback/organizer/${plain}`, p.secret, { status: 'success' })).status).toBe(409);
    expect(await task(plain)).toMatchObject({ state: 'dispatched', node_id: 'apex-refuse' });
  });
});
