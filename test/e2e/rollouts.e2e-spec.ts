import { io, type Socket } from 'socket.io-client';
import { apiClient, type Api } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// Rollouts (issue 29 item 3, docs/rollouts.md): real PostgreSQL, HTTP and Socket.IO devices.
// Each device keeps its own log of what it was given and when: the proof reads those logs.

interface Counts {
  queued: number;
  pending: number;
  dispatched: number;
  running: number;
  completed: number;
  failed: number;
  timed_out: number;
  cancelled: number;
  rejected: number;
}
interface Rollout {
  rollout_id: string;
  status: string;
  total: number;
  released: number;
  current_per_minute: number;
  counts: Counts;
  reason: string | null;
  nodes?: { node_id: string; status: string; task_id: string | null }[];
}

const ROLLOUTS = '/api/v1/rollouts';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The time between releases as the nodes saw them: the least-squares slope of the sorted receipt
 * times against their rank (one late hand-out at either end does not skew it as first-to-last would).
 */
function spacing(sorted: number[]): number {
  const n = sorted.length;
  const meanX = (n - 1) / 2;
  const meanY = sorted.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  sorted.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last: ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

type Behaviour = 'succeed' | 'fail' | 'hold';

/** A device that answers each task as told, logging (time, task) on receipt. */
class FleetDevice {
  readonly d: TestDevice;
  readonly log: { at: number; task_id: string; metadata: Record<string, unknown> }[] = [];
  readonly cancels: string[] = [];

  constructor(
    url: string,
    key: string,
    readonly id: string,
    behaviour: Behaviour,
  ) {
    this.d = new TestDevice(url, key);
    this.d.socket.on('new_task', (m: { task_id: string; metadata?: Record<string, unknown> }) => {
      this.log.push({ at: performance.now(), task_id: m.task_id, metadata: m.metadata ?? {} });
      if (behaviour === 'succeed') this.d.socket.emit('task_result', { task_id: m.task_id, result: { success: true } });
      if (behaviour === 'fail')
        this.d.socket.emit('task_result', { task_id: m.task_id, success: false, error: 'flash write failed' });
    });
    this.d.socket.on('cancel_task', (m: { task_id: string }) => this.cancels.push(m.task_id));
  }

  register(tags: string[]): Promise<Record<string, unknown>> {
    return this.d.register(this.id, { tags, capacity: 1 });
  }
}

describe('rollouts', () => {
  let t: TestApp;
  let client: Api;
  const fleet: FleetDevice[] = [];
  const sockets: Socket[] = [];

  async function devices(n: number, behaviour: Behaviour, tags = ['fleet'], prefix = 'node'): Promise<FleetDevice[]> {
    const made = Array.from(
      { length: n },
      (_, i) => new FleetDevice(t.url, t.keys.worker, `${prefix}-${i}`, behaviour),
    );
    fleet.push(...made);
    await Promise.all(made.map((f) => f.register(tags)));
    return made;
  }
  const get = async (id: string): Promise<Rollout> => (await client.get<Rollout>(`${ROLLOUTS}/${id}`)).body.data;

  beforeAll(async () => {
    t = await startTestApp({ RETRY_BACKOFF_BASE_MS: '1', RETRY_BACKOFF_CAP_MS: '2', NODE_RECONNECT_GRACE_MS: '300' });
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    fleet.splice(0).forEach((f) => f.d.close());
    sockets.splice(0).forEach((s) => s.disconnect());
    await truncate(t.db, 'rollout_nodes, rollouts, task_events, tasks, nodes');
  });
  afterAll(() => t.close());

  it('aborts after at most 7 executions when the nodes fail: the rest are cancelled and never ran, an alert goes out', async () => {
    const nodes = await devices(20, 'fail');
    const events = io(`${t.url}/events`, { transports: ['websocket'], auth: { token: t.keys.client }, forceNew: true });
    sockets.push(events);
    const alerts: { source: string; rollout_id?: string; message: string }[] = [];
    events.on('alert', (a: { data?: (typeof alerts)[number] } & (typeof alerts)[number]) => alerts.push(a.data ?? a));
    await new Promise<void>((ok, fail) => {
      events.once('connect', () => ok());
      events.once('connect_error', fail);
    });

    const created = await client.post<Rollout>(ROLLOUTS, {
      name: 'bad firmware',
      task: { type: 'firmware', data: { version: '2.1' }, max_retries: 0 },
      target: { tags: ['fleet'] },
      rate: { per_minute: 600 },
      abort: [{ failure_type: 'failed', threshold_percent: 30, min_executed: 5 }],
    });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ status: 'in_progress', total: 20 });
    const id = created.body.data.rollout_id;

    const aborted = await until(
      () => get(id),
      (r) => r.status === 'aborted',
    );
    await sleep(500); // anything still going out would arrive now
    const ran = nodes.filter((n) => n.log.length > 0);
    expect(ran.length).toBeGreaterThanOrEqual(5);
    expect(ran.length).toBeLessThanOrEqual(7);
    ran.forEach((n) => expect(n.log[0].metadata).toMatchObject({ rollout_id: id }));
    const final = await get(id);
    expect(final.status).toBe('aborted');
    expect(final.reason).toMatch(/failed ≥ 30%/);
    expect(final.counts.failed).toBe(ran.length - final.counts.cancelled);
    expect(final.counts.completed).toBe(0);
    // Every node that never ran shows cancelled: never released, or released and cancelled before it ran.
    const idle = new Set(nodes.filter((n) => n.log.length === 0).map((n) => n.id));
    expect(idle.size).toBeGreaterThanOrEqual(13);
    for (const n of final.nodes ?? []) if (idle.has(n.node_id)) expect(n.status).toBe('cancelled');
    expect(aborted.released).toBeLessThanOrEqual(7);
    await until(
      () => alerts,
      (a) => a.some((x) => x.source === 'rollout' && x.rollout_id === id),
    );
  });

  it('releases to healthy nodes at the configured rate (±10 %) and completes', async () => {
    const nodes = await devices(20, 'succeed');
    const created = await client.post<Rollout>(ROLLOUTS, {
      name: 'good firmware',
      task: { type: 'firmware', data: { version: '2.2' } },
      target: { tags: ['fleet'] },
      rate: { per_minute: 600 },
      abort: [{ failure_type: 'all', threshold_percent: 30, min_executed: 5 }],
    });
    const id = created.body.data.rollout_id;
    const done = await until(
      () => get(id),
      (r) => r.status === 'completed',
    );
    expect(done.counts).toMatchObject({ completed: 20, queued: 0, failed: 0 });
    expect(done.nodes?.every((n) => n.status === 'completed')).toBe(true);
    const times = nodes.map((n) => {
      expect(n.log).toHaveLength(1);
      return n.log[0].at;
    });
    times.sort((a, b) => a - b);
    const interval = spacing(times);
    // 600 a minute: one every 100 ms.
    expect(interval).toBeGreaterThanOrEqual(90);
    expect(interval).toBeLessThanOrEqual(110);
  });

  it('an exponential rate grows as successes come in, up to per_minute', async () => {
    const nodes = await devices(12, 'succeed');
    const created = await client.post<Rollout>(ROLLOUTS, {
      name: 'ramp',
      task: { type: 'firmware', data: { v: 3 } },
      target: { tags: ['fleet'] },
      rate: { per_minute: 600, exponential: { base_per_minute: 60, factor: 2, after_succeeded: 2 } },
    });
    expect(created.body.data.current_per_minute).toBe(60);
    const id = created.body.data.rollout_id;
    const done = await until(
      () => get(id),
      (r) => r.status === 'completed',
      20_000,
    );
    expect(done.current_per_minute).toBe(600); // 60 × 2^6 capped at 600
    const times = nodes.map((n) => n.log[0].at).sort((a, b) => a - b);
    const gaps = times.slice(1).map((x, i) => x - times[i]);
    const early = (gaps[0] + gaps[1]) / 2; // at 60 then 120 a minute
    const late = (gaps[8] + gaps[9] + gaps[10]) / 3; // at 480-600 a minute
    expect(early).toBeGreaterThan(600);
    expect(late).toBeLessThan(200);
    expect(early).toBeGreaterThan(4 * late);
  });

  it('include_future_nodes: a node that registers later with the tags gets the task; others do not', async () => {
    const created = await client.post<Rollout>(ROLLOUTS, {
      name: 'for late nodes',
      task: { type: 'config', data: { k: 1 } },
      target: { tags: ['late'] },
      include_future_nodes: true,
    });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ status: 'in_progress', total: 0 });
    const id = created.body.data.rollout_id;
    const [other] = await devices(1, 'succeed', ['fleet'], 'other');
    const [late] = await devices(1, 'succeed', ['late', 'x'], 'late');
    await until(
      () => late.log.length,
      (n) => n === 1,
    );
    expect(late.log[0].metadata).toMatchObject({ rollout_id: id });
    const r = await until(
      () => get(id),
      (x) => x.counts.completed === 1,
    );
    expect(r.status).toBe('in_progress'); // waits for more nodes until cancelled
    expect(r.nodes).toEqual([expect.objectContaining({ node_id: 'late-0', status: 'completed' })]);
    // A reconnect of the same node does not give it a second task.
    late.d.close();
    const again = new FleetDevice(t.url, t.keys.worker, 'late-0', 'succeed');
    fleet.push(again);
    await again.register(['late']);
    await sleep(300);
    expect(again.log).toHaveLength(0);
    expect(other.log).toHaveLength(0);
    expect((await get(id)).total).toBe(1);
  });

  it('cancel: nothing more is released, the running task gets cancel_task; a second cancel is a 409', async () => {
    const nodes = await devices(5, 'hold');
    const created = await client.post<Rollout>(ROLLOUTS, {
      name: 'slow',
      task: { type: 'firmware', data: { v: 3 } },
      target: { node_ids: nodes.map((n) => n.id) },
      rate: { per_minute: 6 },
    });
    const id = created.body.data.rollout_id;
    const first = await until(
      () => nodes.filter((n) => n.log.length > 0),
      (ran) => ran.length === 1,
    );
    const cancelled = await client.post<Rollout>(`${ROLLOUTS}/${id}/cancel`, { reason: 'wrong build' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data).toMatchObject({ status: 'cancelled', reason: 'wrong build' });
    await until(
      () => first[0].cancels,
      (c) => c.includes(first[0].log[0].task_id),
    );
    const r = await get(id);
    expect(r.counts).toMatchObject({ cancelled: 1, queued: 4 });
    expect(r.nodes?.map((n) => n.status).sort()).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    const again = await client.post(`${ROLLOUTS}/${id}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe('CONFLICT');
    await sleep(300);
    expect(nodes.filter((n) => n.log.length > 0)).toHaveLength(1);
    const list = await client.get<{ rollouts: Rollout[] }>(ROLLOUTS);
    expect(list.body.data.rollouts.map((x) => x.rollout_id)).toEqual([id]);
  });

  it('bad input is a coded 400 naming the field, and nothing is created', async () => {
    await devices(2, 'hold');
    const good = { name: 'x', task: { type: 'firmware', data: { v: 3 } }, target: { tags: ['fleet'] } };
    const noInput = { ...good, task: { type: 'firmware' } };
    const cases: [unknown, string][] = [
      [{ ...good, colour: 'red' }, 'colour'],
      [{ ...good, task: { type: 'firmware', priority: 'high' } }, 'task.priority'],
      [noInput, 'task.prompt'],
      [{ ...good, task: { type: 'firmware', data: { v: 3 }, max_retries: -1 } }, 'task.max_retries'],
      [{ ...good, target: {} }, 'target'],
      [{ ...good, target: { tags: [], node_ids: [] } }, 'target'],
      [{ ...good, target: { tags: ['nobody-has-this'] } }, 'target'],
      [{ ...good, target: { node_ids: ['ghost'] } }, 'target.node_ids'],
      [{ ...good, target: { tags: ['fleet'], groups: ['a'] } }, 'target.groups'],
      [{ ...good, rate: { per_minute: 0 } }, 'rate.per_minute'],
      [{ ...good, rate: { per_minute: -5 } }, 'rate.per_minute'],
      [
        { ...good, rate: { per_minute: 60, exponential: { base_per_minute: 0, factor: 2, after_succeeded: 1 } } },
        'rate.exponential.base_per_minute',
      ],
      [
        { ...good, rate: { per_minute: 60, exponential: { base_per_minute: 120, factor: 2, after_succeeded: 1 } } },
        'rate.exponential.base_per_minute',
      ],
      [
        { ...good, rate: { per_minute: 60, exponential: { base_per_minute: 10, factor: -1, after_succeeded: 1 } } },
        'rate.exponential.factor',
      ],
      [
        { ...good, abort: [{ failure_type: 'failed', threshold_percent: 120, min_executed: 5 }] },
        'abort.0.threshold_percent',
      ],
      [
        { ...good, abort: [{ failure_type: 'failed', threshold_percent: -1, min_executed: 5 }] },
        'abort.0.threshold_percent',
      ],
      [
        { ...good, abort: [{ failure_type: 'rejected', threshold_percent: 10, min_executed: 5 }] },
        'abort.0.failure_type',
      ],
      [{ ...good, abort: [{ failure_type: 'all', threshold_percent: 10, min_executed: 0 }] }, 'abort.0.min_executed'],
      [{ ...good, include_future_nodes: true, target: { node_ids: ['node-0'] } }, 'include_future_nodes'],
      [{ task: { type: 'firmware', data: { v: 3 } }, target: { tags: ['fleet'] } }, 'name'],
    ];
    for (const [body, field] of cases) {
      const r = await client.post(ROLLOUTS, body);
      expect({ body, status: r.status, code: r.body.error?.code, field: r.body.error?.details?.field }).toEqual({
        body,
        status: 400,
        code: 'VALIDATION_ERROR',
        field,
      });
    }
    const [{ n }]: { n: number }[] = await t.db.query(
      `SELECT (SELECT count(*) FROM rollouts) + (SELECT count(*) FROM rollout_nodes) + (SELECT count(*) FROM tasks) AS n`,
    );
    expect(Number(n)).toBe(0);
    expect((await client.get(`${ROLLOUTS}/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await client.get(`${ROLLOUTS}/nope`)).body.error?.details?.field).toBe('id');
  });
});
