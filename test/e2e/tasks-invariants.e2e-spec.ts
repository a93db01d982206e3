import { backoffBoundsMs } from '../../src/modules/tasks/backoff.js';
import { LeaseSweeper } from '../../src/modules/tasks/lease-sweeper.service.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/** The invariants of DESIGN.md (Tasks), each proven with real concurrent requests. */
describe('task invariants under concurrency', () => {
  let t: TestApp;
  let client: Api;
  let worker: Api;
  const BASE = 1000;
  const CAP = 8000;

  beforeAll(async () => {
    t = await startTestApp({
      RETRY_BACKOFF_BASE_MS: String(BASE),
      RETRY_BACKOFF_CAP_MS: String(CAP),
      SWEEP_INTERVAL_MS: '600000',
    });
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await truncate(t.db, 'task_events, tasks');
  });

  const submit = async (body: Record<string, unknown> = {}): Promise<Task> =>
    (await client.post<Task>('/api/v1/tasks', { prompt: 'p', ...body })).body.data;

  it('20 concurrent `next` callers on 50 tasks claim each task exactly once (SKIP LOCKED)', async () => {
    const batch = await client.post('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 50 }, (_, i) => ({ prompt: `t${i}`, work_directory: '/w' })),
    });
    expect(batch.body.data).toMatchObject({ created: 50 });
    const claimedBy = new Map<string, string>();
    let duplicates = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        for (;;) {
          const r = await worker.get<Task | null>(`/api/v1/tasks/next?work_path=/w&worker_id=worker-${w}`);
          expect(r.status).toBe(200);
          if (!r.body.data) return;
          if (claimedBy.has(r.body.data.task_id)) duplicates++;
          claimedBy.set(r.body.data.task_id, `worker-${w}`);
        }
      }),
    );
    expect(duplicates).toBe(0);
    expect(claimedBy.size).toBe(50);
    const rows: { worker_id: string; attempt: number; status: string }[] = await t.db.query(
      `SELECT worker_id, attempt, status FROM tasks`,
    );
    expect(rows.every((r) => r.status === 'running' && r.attempt === 1)).toBe(true);
    for (const r of rows) expect(r.worker_id).toMatch(/^worker-\d+$/);
    const claims = await t.db.query(`SELECT count(*)::int AS n FROM task_events WHERE type = 'claimed'`);
    expect(claims[0].n).toBe(50);
  });

  it('a complete from another worker or an older attempt is rejected, logged and changes nothing', async () => {
    const task = await submit();
    await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w-old' });
    // The lease ran out and the task went to someone else: attempt 2 belongs to w-new.
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [task.task_id]);
    expect(await t.app.get(LeaseSweeper).sweep()).toBe(1);
    await t.db.query(`UPDATE tasks SET run_at = now() WHERE id = $1`, [task.task_id]);
    const second = await worker.post<Task>(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w-new' });
    expect(second.body.data.attempt).toBe(2);
    const before = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;

    const stale = await worker.post(`/api/v1/tasks/${task.task_id}/complete`, {
      worker_id: 'w-old',
      attempt: 1,
      result: { status: 'success', output: 'late' },
    });
    expect(stale.status).toBe(409);
    // Seed 002: every concurrency conflict is CONFLICT; the finer reason is in details.
    expect(stale.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'STALE_ATTEMPT' } });
    const otherWorker = await worker.post(`/api/v1/tasks/${task.task_id}/complete`, {
      worker_id: 'w-intruder',
      result: { status: 'success' },
    });
    expect(otherWorker.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'STALE_ATTEMPT' } });
    const oldAttemptRightWorker = await worker.post(`/api/v1/tasks/${task.task_id}/progress`, {
      worker_id: 'w-new',
      attempt: 1,
      progress: 50,
    });
    expect(oldAttemptRightWorker.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'STALE_ATTEMPT' } });

    const after = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;
    expect(after).toEqual(before);
    const logs = await client.get<{ logs: { type: string; level: string }[] }>(
      `/api/v1/tasks/${task.task_id}/logs?level=warn`,
    );
    expect(logs.body.data.logs.filter((l) => l.type === 'stale_report_rejected')).toHaveLength(3);

    const ok = await worker.post<Task>(`/api/v1/tasks/${task.task_id}/complete`, {
      worker_id: 'w-new',
      attempt: 2,
      result: { status: 'success', output: 'on time' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ state: 'completed', result: { output: 'on time' } });
  });

  it('a duplicate complete is a 409 and keeps the first result', async () => {
    const task = await submit();
    await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
    const results = await Promise.all(
      ['one', 'two', 'three', 'four'].map((output) =>
        worker.post<Task>(`/api/v1/tasks/${task.task_id}/complete`, {
          worker_id: 'w',
          result: { status: 'success', output },
        }),
      ),
    );
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.error?.code === 'CONFLICT')).toBe(true);
    const stored = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;
    expect(stored.result?.output).toBe(winners[0].body.data.result?.output);
    const completions = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = 'completed'`,
      [task.task_id],
    );
    expect(completions[0].n).toBe(1);
  });

  it('the same complete sent four times at once (a retry after a lost answer) is applied once and answered 200 each time', async () => {
    const task = await submit();
    await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
    const body = { worker_id: 'w', attempt: 1, result: { status: 'success', output: 'same' } };
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => worker.post<Task>(`/api/v1/tasks/${task.task_id}/complete`, body)),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results.every((r) => r.body.data.state === 'completed' && r.body.data.result?.output === 'same')).toBe(true);
    const completions = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = 'completed'`,
      [task.task_id],
    );
    expect(completions[0].n).toBe(1);
    // From another worker, or for another attempt, it is still refused.
    const other = await worker.post(`/api/v1/tasks/${task.task_id}/complete`, { ...body, worker_id: 'intruder' });
    expect(other.status).toBe(409);
  });

  it('cancel racing complete: exactly one wins, the other is a 409, never both', async () => {
    for (let round = 0; round < 10; round++) {
      const task = await submit();
      await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
      const [cancel, complete] = await Promise.all([
        client.post(`/api/v1/tasks/${task.task_id}/cancel`, { reason: 'race' }),
        worker.post(`/api/v1/tasks/${task.task_id}/complete`, { worker_id: 'w', result: { status: 'success' } }),
      ]);
      expect([cancel.status, complete.status].sort()).toEqual([200, 409]);
      const final = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;
      expect(final.state).toBe(cancel.status === 200 ? 'cancelled' : 'completed');
      const events: { type: string }[] = await t.db.query(
        `SELECT type FROM task_events WHERE task_id = $1 AND type IN ('cancelled','completed')`,
        [task.task_id],
      );
      expect(events).toHaveLength(1);
    }
  });

  it('concurrent submissions with one idempotency key create one task', async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        client.post<Task>('/api/v1/tasks', { prompt: `attempt ${i}` }, { 'Idempotency-Key': 'order-42' }),
      ),
    );
    const ids = new Set(responses.map((r) => r.body.data.task_id));
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(9);
    const later = await client.post<Task>('/api/v1/tasks', { prompt: 'again', idempotency_key: 'order-42' });
    expect(later.status).toBe(200);
    expect(later.body.data.task_id).toBe([...ids][0]);
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM tasks`);
    expect(rows[0].n).toBe(1);
  });

  it('expired leases are swept into a backed-off retry, then timed_out when retries run out', async () => {
    const task = await submit({ max_retries: 1 });
    await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [task.task_id]);
    const sweeper = t.app.get(LeaseSweeper);
    const sweptAt = Date.now();
    expect(await sweeper.sweep()).toBe(1);
    const requeued = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;
    expect(requeued).toMatchObject({
      state: 'pending',
      retry_count: 1,
      error: { code: 'LEASE_EXPIRED', worker_id: 'w' },
    });
    const delay = new Date(requeued.run_at as string).getTime() - sweptAt;
    const { min, max } = backoffBoundsMs(0, BASE, CAP);
    expect(delay).toBeGreaterThanOrEqual(min - 200);
    expect(delay).toBeLessThanOrEqual(max + 200);

    await t.db.query(`UPDATE tasks SET run_at = now() WHERE id = $1`, [task.task_id]);
    await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [task.task_id]);
    expect(await sweeper.sweep()).toBe(1);
    const final = (await client.get<Task>(`/api/v1/tasks/${task.task_id}`)).body.data;
    expect(final).toMatchObject({ state: 'timed_out', retry_count: 1 });
    expect(await sweeper.sweep()).toBe(0);
  });

  it('two sweepers at once move each expired task once', async () => {
    const batch = await client.post<{ results: { task_id: string }[] }>('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 30 }, () => ({ prompt: 'p' })),
    });
    for (let i = 0; i < 30; i++) await worker.get('/api/v1/tasks/next?worker_id=w');
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second'`);
    const sweeper = t.app.get(LeaseSweeper);
    const moved = await Promise.all([sweeper.sweep(), sweeper.sweep(), sweeper.sweep()]);
    expect(moved.reduce((a, b) => a + b, 0)).toBe(30);
    const events = await t.db.query(`SELECT count(*)::int AS n FROM task_events WHERE type = 'lease_expired'`);
    expect(events[0].n).toBe(30);
    expect(batch.body.data.results).toHaveLength(30);
  });

  it('backoff grows with each retry and stays within the cap', async () => {
    const task = await submit({ max_retries: 5 });
    const delays: number[] = [];
    for (let n = 0; n < 5; n++) {
      await t.db.query(`UPDATE tasks SET run_at = now() WHERE id = $1`, [task.task_id]);
      await worker.post(`/api/v1/tasks/${task.task_id}/acquire`, { worker_id: 'w' });
      const failedAt = Date.now();
      const r = await worker.post<Task>(`/api/v1/tasks/${task.task_id}/fail`, { worker_id: 'w', error: `try ${n}` });
      expect(r.body.data.retry_count).toBe(n + 1);
      const delay = new Date(r.body.data.run_at as string).getTime() - failedAt;
      const { min, max } = backoffBoundsMs(n, BASE, CAP);
      expect(delay).toBeGreaterThanOrEqual(min - 200);
      expect(delay).toBeLessThanOrEqual(max + 200);
      delays.push(delay);
    }
    expect(delays[4]).toBeLessThanOrEqual(CAP + 200);
  });

  it('a task is durable once acknowledged: the row and its created event exist before the 201', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => client.post<Task>('/api/v1/tasks', { prompt: `d${i}` })),
    );
    expect(results.filter((r) => r.status !== 201).map((r) => JSON.stringify(r.body))).toEqual([]);
    const ids = results.map((r) => r.body.data.task_id);
    const rows = await t.db.query(
      `SELECT count(*)::int AS n FROM tasks t JOIN task_events e ON e.task_id = t.id AND e.type = 'created' WHERE t.id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows[0].n).toBe(40);
  });
});
