import { createHook } from 'node:async_hooks';
import { DispatchRound, UncertainAssignment } from '../../src/modules/dispatch/dispatch-round.js';
import { NodeLiveness } from '../../src/modules/dispatch/node-liveness.service.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { makeTenant } from '../support/dispatch-fleet.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// At-least-once delivery (issue 9): acks, the ack timeout, and what a re-register brings back.
const ACK_TIMEOUT_MS = 300;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('delivery: acknowledged assignments, ack timeout, redelivery on re-register', () => {
  let t: TestApp;
  let client: Api;
  const devices: TestDevice[] = [];
  const device = (): TestDevice => {
    const d = new TestDevice(t.url, t.keys.worker);
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    // The liveness tick is driven by hand (check()), so each step is deterministic.
    t = await startTestApp({
      DISPATCH_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      NODE_LIVENESS_TICK_MS: '600000',
      NODE_RECONNECT_GRACE_MS: '60000',
    });
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close());
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(() => t.close());

  const task = async (id: string): Promise<Task> => (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;
  const submit = async (extra: Record<string, unknown> = {}): Promise<string> =>
    (await client.post<Task>('/api/v1/tasks', { prompt: 'deliver me', ...extra })).body.data.task_id;
  const check = () => t.app.get(NodeLiveness).check();

  it('a device that answers the ack has the task running at once, and is remembered as acknowledging', async () => {
    const d = device();
    d.socket.on('new_task', (_task: unknown, ack?: (a: unknown) => void) => ack?.({ received: true }));
    await d.register('acker'); // no `acks: true`: learned from the first answer
    const id = await submit();
    await d.next('new_task');
    await waitFor(async () => (await task(id)).state === 'running');
    const [node] = await t.db.query(`SELECT acks FROM nodes WHERE id = 'acker'`);
    expect(node.acks).toBe(true);
    const events = await t.db.query(`SELECT type FROM task_events WHERE task_id = $1 ORDER BY id`, [id]);
    expect(events.map((e: { type: string }) => e.type)).toEqual(['created', 'dispatched', 'started']);
  });

  it('an acknowledging device that does not ack: the assignment is re-sent once, then released to another node with cancel_task to the first', async () => {
    const mute = device();
    await mute.register('mute', { acks: true });
    const id = await submit({ target_node_id: undefined });
    expect(await mute.next('new_task')).toMatchObject({ task_id: id, attempt: 1 });

    expect(await check()).toMatchObject({ resent: 0, unacked: 0 }); // not yet due
    await sleep(ACK_TIMEOUT_MS + 50);
    expect(await check()).toMatchObject({ resent: 1, unacked: 0 });
    expect(await mute.next('new_task')).toMatchObject({ task_id: id, attempt: 1 });

    // Another node joins; the second timeout releases the task to it.
    const other = device();
    other.socket.on('new_task', (_task: unknown, ack?: (a: unknown) => void) => ack?.({ received: true }));
    await other.register('other', { acks: true });
    // The mute one takes no new work, so the released task can only go to the other.
    expect((await apiClient(t, t.keys.admin).post('/api/v1/nodes/mute/drain')).status).toBe(200);
    await sleep(ACK_TIMEOUT_MS + 50);
    expect(await check()).toMatchObject({ unacked: 1 });
    expect(await mute.next('cancel_task')).toMatchObject({ task_id: id, attempt: 1 });
    const second = await other.next('new_task');
    expect(second).toMatchObject({ task_id: id, attempt: 2 });
    await waitFor(async () => (await task(id)).state === 'running');
    expect(await other.request('task_result', { task_id: id, attempt: 2, result: { success: true } })).toMatchObject({
      success: true,
      status: 'completed',
    });
    // The first node's late result for its attempt changes nothing.
    expect(await mute.request('task_result', { task_id: id, attempt: 1, result: { success: true } })).toMatchObject({
      success: false,
      error: { code: 'STALE_ATTEMPT' },
    });
    expect((await task(id)).node_id).toBe('other');
  });

  it('a device that never acknowledges (seed 004) is never timed out: a long silent task is not run twice', async () => {
    const seed = device();
    await seed.register('seed-device');
    const id = await submit();
    await seed.next('new_task');
    for (let i = 0; i < 3; i++) {
      await sleep(ACK_TIMEOUT_MS + 50);
      expect(await check()).toMatchObject({ resent: 0, unacked: 0 });
    }
    expect(seed.received.filter((r) => r.event === 'new_task' || r.event === 'cancel_task')).toEqual([]);
    expect(await task(id)).toMatchObject({ state: 'dispatched', node_id: 'seed-device', attempt: 1 });
  });

  it('re-register with running_tasks: what it is on is not re-sent, other held tasks are, and a task it no longer holds gets cancel_task', async () => {
    const first = device();
    await first.register('resumer', { capacity: 3 });
    const a = await submit();
    const b = await submit();
    const got = [await first.next('new_task'), await first.next('new_task')];
    expect(got.map((g) => g.task_id).sort()).toEqual([a, b].sort());
    first.close();

    const again = device();
    const foreign = '00000000-0000-4000-8000-000000000001';
    const reg = await again.register('resumer', {
      capacity: 3,
      running_tasks: [
        { task_id: a, attempt: 1 },
        { task_id: foreign, attempt: 3 },
      ],
    });
    expect((reg.held_tasks as { task_id: string }[]).map((h) => h.task_id).sort()).toEqual([a, b].sort());
    expect(await again.next('new_task')).toMatchObject({ task_id: b, attempt: 1 });
    expect(await again.next('cancel_task')).toMatchObject({ task_id: foreign, attempt: 3 });
    await sleep(100);
    expect(again.received.filter((r) => r.event === 'new_task')).toEqual([]); // `a` was not sent again
    // Reporting a dispatched task as running counts as its ack.
    await waitFor(async () => (await task(a)).state === 'running');
  });

  it('a dispatch round whose COMMIT went through but whose connection died: the assignment is delivered once the database answers again', async () => {
    const d = device();
    await d.register('after-outage');
    // Fault injection on the real round: it commits, then reports the connection lost at COMMIT.
    const repo = t.app.get(DispatchRound);
    const real = repo.assignBatch.bind(repo);
    repo.assignBatch = async (...args: Parameters<typeof real>) => {
      repo.assignBatch = real;
      const round = await real(...args);
      throw new UncertainAssignment(
        round.assigned.map((a) => a.task),
        new Error('Connection terminated unexpectedly'),
      );
    };
    const id = await submit();
    // It is dispatched in the database, and the device is told once the database is seen answering.
    expect(await d.next('new_task', (m) => m.task_id === id, 5000)).toMatchObject({ task_id: id, attempt: 1 });
    expect(await task(id)).toMatchObject({ state: 'dispatched', node_id: 'after-outage', attempt: 1 });
  });

  it("a shared device (docs/flow-control.md): another tenant's assignment it does not ack is re-sent, and one from a round whose commit was uncertain is delivered", async () => {
    const tenant = await makeTenant(t, `deliver-${Date.now()}`);
    const shared = new TestDevice(t.url, t.keys.admin);
    devices.push(shared);
    await shared.register('shared-mute', { acks: true, shared: true, capacity: 2 });
    const submitAs = async (): Promise<string> =>
      (await tenant.api.post<Task>('/api/v1/tasks', { prompt: 'for the pool' })).body.data.task_id;
    const first = await submitAs();
    expect(await shared.next('new_task', (m) => m.task_id === first)).toMatchObject({ attempt: 1 });
    await sleep(ACK_TIMEOUT_MS + 50);
    expect(await check()).toMatchObject({ resent: 1 });
    expect(await shared.next('new_task', (m) => m.task_id === first)).toMatchObject({ attempt: 1 });

    const repo = t.app.get(DispatchRound);
    const real = repo.assignBatch.bind(repo);
    repo.assignBatch = async (...args: Parameters<typeof real>) => {
      repo.assignBatch = real;
      const round = await real(...args);
      throw new UncertainAssignment(
        round.assigned.map((a) => a.task),
        new Error('Connection terminated unexpectedly'),
      );
    };
    const second = await submitAs();
    expect(await shared.next('new_task', (m) => m.task_id === second, 5000)).toMatchObject({ attempt: 1 });
    const seen = await tenant.api.get<Task>(`/api/v1/tasks/${second}`);
    expect(seen.body.data).toMatchObject({ state: 'dispatched', node_id: 'shared-mute' });
  });

  it('an assignment to a device on this hub starts no timer that could outlive it (the ack is a plain callback)', async () => {
    // Socket.IO's ack timeout (`.timeout(ms).emit`) is a ref'd timer per assignment that neither a
    // disconnect nor the server's close clears: an in-process hub closed with an unacknowledged
    // assignment kept its process alive for DISPATCH_ACK_TIMEOUT_MS (a jest run hung 10 minutes).
    const timers: string[] = [];
    const hook = createHook({
      init(_id, type) {
        if (type !== 'Timeout') return;
        // The frame that called setTimeout: Socket.IO's own (its ack timeout), not code it called.
        const frames = (new Error().stack ?? '').split('\n');
        const caller = frames[frames.findIndex((f) => f.includes('(node:timers')) + 1] ?? '';
        if (caller.includes('node_modules/socket.io/')) timers.push(frames.join('\n'));
      },
    });
    const silent = device();
    await silent.register('silent-local');
    const acking = device();
    acking.socket.on('new_task', (_task: unknown, ack?: (a: unknown) => void) => ack?.({ received: true }));
    await acking.register('acking-local');
    hook.enable();
    try {
      const ids = [await submit({ target_node_id: 'silent-local' }), await submit({ target_node_id: 'acking-local' })];
      expect(await silent.next('new_task')).toMatchObject({ task_id: ids[0] });
      expect(await acking.next('new_task')).toMatchObject({ task_id: ids[1] });
      await waitFor(async () => (await task(ids[1])).state === 'running');
    } finally {
      hook.disable();
    }
    expect(timers).toEqual([]);
  });

  it('bad delivery options are refused with the field and change nothing', async () => {
    const d = device();
    const bad = await d.request('device_register', { device_id: 'bad-opts', running_tasks: [{ attempt: 'one' }] });
    expect(bad).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
    const acks = await d.request('device_register', { device_id: 'bad-opts', acks: 'yes' });
    expect(acks).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', details: { field: 'acks' } } });
    expect(await t.db.query(`SELECT id FROM nodes WHERE id = 'bad-opts'`)).toEqual([]);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
