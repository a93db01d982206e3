import { apiClient, type Api, hubApi, type Task } from '../support/api.js';
import { resetDatabase, startTestApp, type TestApp, truncate } from '../support/test-app.js';

const PROJECT = '/home/user/projects/my-project';

describe('canonical task API: the seed 002 flows', () => {
  let t: TestApp;
  let client: Api;
  let worker: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await truncate(t.db, 'task_events, tasks');
  });

  it('runs the seed Python client flow: create → next → complete → get → list', async () => {
    // Through the SDK's typed client: a path, body or field the contract lacks does not compile.
    const hubClient = hubApi(t, t.keys.client);
    const hubWorker = hubApi(t, t.keys.worker);
    // create_task(work_directory, prompt, priority, tags), exactly the seed's body
    const created = await hubClient.POST('/api/v1/tasks', {
      body: {
        work_directory: PROJECT,
        prompt: 'Analyze the codebase and identify potential security vulnerabilities',
        priority: 'high',
        tags: ['security', 'analysis', 'urgent'],
      },
    });
    expect(created.response.status).toBe(201);
    expect(created.data).toMatchObject({ success: true, error: null });
    expect(created.data?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    const task = created.data!.data;
    expect(task).toMatchObject({
      status: 'waiting',
      priority: 'high',
      work_directory: PROJECT,
      tags: ['security', 'analysis', 'urgent'],
    });
    expect(task.task_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(task.created_at).toBeTruthy();

    // get_next_task(work_path, worker_id)
    const next = await hubWorker.GET('/api/v1/tasks/next', {
      params: { query: { work_path: PROJECT, worker_id: 'worker-001' } },
    });
    expect(next.response.status).toBe(200);
    expect(next.data?.data).toMatchObject({
      task_id: task.task_id,
      prompt: 'Analyze the codebase and identify potential security vulnerabilities',
      work_directory: PROJECT,
      priority: 'high',
      tags: ['security', 'analysis', 'urgent'],
      status: 'working',
      worker_id: 'worker-001',
      attempt: 1,
    });

    // complete_task(task_id, original_prompt, result) with the seed's result object
    const result = {
      status: 'success' as const,
      output: 'Security analysis completed. Found 3 potential vulnerabilities',
      duration: 4500,
      details: { vulnerabilities_found: 3, files_analyzed: 127, scan_duration: '4.5s' },
    };
    const done = await hubWorker.POST('/api/v1/tasks/{id}/complete', {
      params: { path: { id: task.task_id } },
      body: { original_prompt: next.data?.data?.prompt ?? undefined, result },
    });
    expect(done.response.status).toBe(200);
    expect(done.data?.data).toMatchObject({ task_id: task.task_id, status: 'completed', worker_id: 'worker-001' });
    expect(done.data?.data.completed_at).toBeTruthy();

    // get_task
    const got = (await hubClient.GET('/api/v1/tasks/{id}', { params: { path: { id: task.task_id } } })).data!;
    expect(got.data).toMatchObject({ status: 'completed', retry_count: 0, max_retries: 3, result: { ...result } });
    expect(got.data.started_at).toBeTruthy();
    expect(new Date(got.data.completed_at as string).getTime()).toBeGreaterThanOrEqual(
      new Date(got.data.started_at as string).getTime(),
    );

    // list ?status=completed&priority=high&limit=5&offset=0
    const list = await hubClient.GET('/api/v1/tasks', {
      params: { query: { status: 'completed', priority: 'high', limit: 5, offset: 0 } },
    });
    expect(list.data?.data.tasks.map((x) => x.task_id)).toEqual([task.task_id]);
    expect(list.data?.data.pagination).toEqual({
      total: 1,
      limit: 5,
      offset: 0,
      has_more: false,
      next_cursor: null,
      total_capped: false,
    });
  });

  it('answers data: null when there is nothing to do', async () => {
    const next = await worker.get('/api/v1/tasks/next?work_path=/nothing/here&worker_id=w1');
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ success: true, data: null, error: null });
  });

  it('cancels with a reason, then retries the cancelled task (seed sections 6 and 7)', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p', work_directory: PROJECT });
    const id = body.data.task_id;
    const cancelled = await client.post<Task>(`/api/v1/tasks/${id}/cancel`, { reason: 'Project cancelled by client' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data).toMatchObject({
      task_id: id,
      status: 'cancelled',
      reason: 'Project cancelled by client',
    });
    expect(cancelled.body.data.cancelled_at).toBeTruthy();

    const again = await client.post(`/api/v1/tasks/${id}/cancel`, { reason: 'twice' });
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe('CONFLICT');

    const retried = await client.post<Task>(`/api/v1/tasks/${id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.data).toMatchObject({ task_id: id, status: 'waiting', retry_count: 1, max_retries: 3 });
    expect(retried.body.data.last_retry_at).toBeTruthy();
  });

  it('refuses a retry past max_retries unless forced, and a retry of an active task', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p', max_retries: 0 });
    const id = body.data.task_id;
    const active = await client.post(`/api/v1/tasks/${id}/retry`);
    expect(active.status).toBe(409);
    expect(active.body.error?.code).toBe('CONFLICT');

    await client.delete(`/api/v1/tasks/${id}`);
    const refused = await client.post(`/api/v1/tasks/${id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe('RETRY_LIMIT_EXCEEDED');
    expect((await client.get<Task>(`/api/v1/tasks/${id}`)).body.data.state).toBe('cancelled');

    const forced = await client.post<Task>(`/api/v1/tasks/${id}/retry`, { force: true });
    expect(forced.status).toBe(200);
    expect(forced.body.data).toMatchObject({ state: 'pending', retry_count: 1 });
  });

  it('DELETE cancels a task', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p' });
    const res = await client.delete<Task>(`/api/v1/tasks/${body.data.task_id}`);
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('cancelled');
  });

  it('explicit acquire: first worker wins, the second gets the seed conflict message', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p' });
    const id = body.data.task_id;
    const first = await worker.post<Task>(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w-a' });
    expect(first.status).toBe(200);
    expect(first.body.data).toMatchObject({ state: 'running', worker_id: 'w-a', attempt: 1 });
    const same = await worker.post<Task>(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w-a' });
    expect(same.status).toBe(200);
    const second = await worker.post(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w-b' });
    expect(second.status).toBe(409);
    expect(second.body.error).toEqual({ code: 'CONFLICT', message: 'Task already acquired by another worker' });
  });

  it('heartbeat extends the lease and records progress; progress updates the task', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p', timeout_seconds: 5 });
    const id = body.data.task_id;
    const claimed = await worker.post<Task>(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w1' });
    const leaseBefore = new Date(claimed.body.data.lease_expires_at as string).getTime();
    const hb = await worker.post<Task>(`/api/v1/tasks/${id}/heartbeat`, { worker_id: 'w1', attempt: 1, progress: 30 });
    expect(hb.status).toBe(200);
    expect(new Date(hb.body.data.lease_expires_at as string).getTime()).toBeGreaterThan(leaseBefore);
    expect(hb.body.data.progress).toBe(30);
    const pr = await worker.post<Task>(`/api/v1/tasks/${id}/progress`, {
      worker_id: 'w1',
      progress: 75,
      message: 'three quarters',
    });
    expect(pr.status).toBe(200);
    expect(pr.body.data).toMatchObject({ progress: 75, status: 'working' });
    const logs = await client.get<{ logs: { type: string; message: string }[] }>(`/api/v1/tasks/${id}/logs`);
    expect(logs.body.data.logs.map((l) => l.type)).toEqual(['created', 'claimed', 'heartbeat', 'progress']);
    const warnOnly = await client.get<{ logs: unknown[] }>(`/api/v1/tasks/${id}/logs?level=warn`);
    expect(warnOnly.body.data.logs).toEqual([]);
  });

  it('a non-success result fails the attempt and re-queues with backoff; fail without retry ends it', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'p', max_retries: 1 });
    const id = body.data.task_id;
    await worker.post(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w1' });
    const failed = await worker.post<Task>(`/api/v1/tasks/${id}/complete`, {
      result: { status: 'error', output: 'boom' },
    });
    expect(failed.status).toBe(200);
    expect(failed.body.data).toMatchObject({
      state: 'pending',
      retry_count: 1,
      error: { code: 'TASK_FAILED', message: 'boom' },
    });
    expect(new Date(failed.body.data.run_at as string).getTime()).toBeGreaterThan(Date.now() - 100);

    // Not ready until its backoff passes: `next` skips it.
    const none = await worker.get('/api/v1/tasks/next?worker_id=w2');
    expect(none.body.data).toBeNull();

    await t.db.query(`UPDATE tasks SET run_at = now() WHERE id = $1`, [id]);
    const again = await worker.get<Task>('/api/v1/tasks/next?worker_id=w2');
    expect(again.body.data).toMatchObject({ task_id: id, attempt: 2 });
    const final = await worker.post<Task>(`/api/v1/tasks/${id}/fail`, { worker_id: 'w2', error: 'still broken' });
    expect(final.body.data).toMatchObject({ state: 'failed', status: 'failed', retry_count: 1 });
    expect(final.body.data.completed_at).toBeTruthy();
  });

  it('reply appends to the conversation and re-queues a finished task', async () => {
    const { body } = await client.post<Task>('/api/v1/tasks', { prompt: 'first' });
    const id = body.data.task_id;
    const activeReply = await client.post<Task>(`/api/v1/tasks/${id}/reply`, { message: 'while queued' });
    expect(activeReply.body.data).toMatchObject({
      state: 'pending',
      messages: [{ role: 'user', content: 'while queued' }],
    });
    await worker.post(`/api/v1/tasks/${id}/acquire`, { worker_id: 'w1' });
    await worker.post(`/api/v1/tasks/${id}/complete`, { result: { status: 'success', output: 'ok' } });
    const reply = await client.post<Task>(`/api/v1/tasks/${id}/reply`, { message: 'and the tests too' });
    expect(reply.status).toBe(200);
    expect(reply.body.data.state).toBe('pending');
    expect(reply.body.data.result).toBeNull();
    expect(reply.body.data.messages.map((m) => m.content)).toEqual(['while queued', 'and the tests too']);
    const next = await worker.get<Task>('/api/v1/tasks/next?worker_id=w1');
    expect(next.body.data).toMatchObject({ task_id: id, attempt: 2 });
  });

  it('orders `next` by priority, then age, and honours work_path prefixes', async () => {
    const mk = (prompt: string, priority: string, work_directory: string) =>
      client.post<Task>('/api/v1/tasks', { prompt, priority, work_directory });
    await mk('low', 'low', '/srv/a');
    await mk('urgent-other', 'urgent', '/srv/b');
    await mk('high-1', 'high', '/srv/a/sub');
    await mk('high-2', 'high', '/srv/a');
    await mk('sibling', 'urgent', '/srv/ab'); // not under /srv/a
    const order: string[] = [];
    for (;;) {
      const r = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=w&work_path=/srv/a/');
      if (!r.body.data) break;
      order.push(r.body.data.prompt as string);
    }
    expect(order).toEqual(['high-1', 'high-2', 'low']);
  });

  it('submits batches with per-item results', async () => {
    const res = await client.post<{
      total: number;
      created: number;
      failed: number;
      results: {
        index: number;
        success: boolean;
        task_id?: string;
        error?: { code: string; details: { field: string } };
      }[];
    }>('/api/v1/tasks/batch', {
      tasks: [
        { prompt: 'a', priority: 'low' },
        { prompt: 'b', work_directory: 'relative/path' },
        { prompt: 'c', idempotency_key: 'batch-k' },
        { prompt: 'c again', idempotency_key: 'batch-k' },
        'not an object',
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ total: 5, created: 3, failed: 2 });
    const [a, b, c, c2, bad] = res.body.data.results;
    expect(a).toMatchObject({ index: 0, success: true });
    expect(b).toMatchObject({
      index: 1,
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'work_directory' } },
    });
    expect(c.task_id).toBe(c2.task_id);
    expect(bad).toMatchObject({ index: 4, success: false });
    const count = await t.db.query(`SELECT count(*)::int AS n FROM tasks`);
    expect(count[0].n).toBe(2);
  });

  it('refuses more than 1,000 items in a batch', async () => {
    const res = await client.post('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 1001 }, () => ({ prompt: 'x' })),
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.field).toBe('tasks');
  });

  it('filters and paginates lists', async () => {
    for (let i = 0; i < 7; i++) {
      await client.post('/api/v1/tasks', {
        prompt: `t${i}`,
        type: i % 2 ? 'odd' : 'even',
        tags: i < 3 ? ['early'] : [],
      });
    }
    const page = await client.get<{ tasks: Task[]; pagination: Record<string, unknown> }>(
      '/api/v1/tasks?limit=3&offset=0&sort=created_at&order=asc',
    );
    expect(page.body.data.tasks.map((x) => x.prompt)).toEqual(['t0', 't1', 't2']);
    expect(page.body.data.pagination).toEqual({
      total: 7,
      limit: 3,
      offset: 0,
      has_more: true,
      next_cursor: expect.any(String),
      total_capped: false,
    });
    // The cursor continues where the offset page ended.
    const next = await client.get<{ tasks: Task[] }>(
      `/api/v1/tasks?limit=3&sort=created_at&order=asc&cursor=${String(page.body.data.pagination.next_cursor)}`,
    );
    expect(next.body.data.tasks.map((x) => x.prompt)).toEqual(['t3', 't4', 't5']);
    const last = await client.get<{ tasks: Task[]; pagination: Record<string, unknown> }>(
      '/api/v1/tasks?limit=3&offset=6&order=asc',
    );
    expect(last.body.data.pagination).toEqual({
      total: 7,
      limit: 3,
      offset: 6,
      has_more: false,
      next_cursor: null,
      total_capped: false,
    });
    const beyond = await client.get<{ tasks: Task[]; pagination: Record<string, unknown> }>('/api/v1/tasks?offset=50');
    expect(beyond.body.data.tasks).toEqual([]);
    expect(beyond.body.data.pagination).toMatchObject({ total: 7, has_more: false });
    const odd = await client.get<{ tasks: Task[] }>('/api/v1/tasks?type=odd');
    expect(odd.body.data.tasks).toHaveLength(3);
    const tagged = await client.get<{ tasks: Task[] }>('/api/v1/tasks?tag=early&status=waiting');
    expect(tagged.body.data.tasks).toHaveLength(3);
    const future = await client.get<{ tasks: Task[] }>(
      `/api/v1/tasks?created_after=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    expect(future.body.data.tasks).toHaveLength(0);
  });

  it('computes statistics in SQL: overview, distributions, processing time, hourly series', async () => {
    const ids: string[] = [];
    for (const priority of ['low', 'high', 'high', 'urgent']) {
      ids.push((await client.post<Task>('/api/v1/tasks', { prompt: 'p', priority })).body.data.task_id);
    }
    await worker.post(`/api/v1/tasks/${ids[0]}/acquire`, { worker_id: 'w' });
    await worker.post(`/api/v1/tasks/${ids[0]}/complete`, { result: { status: 'success' } });
    await worker.post(`/api/v1/tasks/${ids[1]}/acquire`, { worker_id: 'w' });
    await client.post(`/api/v1/tasks/${ids[2]}/cancel`, {});
    const stats = await client.get<{
      overview: Record<string, number>;
      status_distribution: Record<string, number>;
      priority_distribution: Record<string, number>;
      performance_metrics: Record<string, number>;
      time_series: { timestamp: string; completed: number; failed: number }[];
    }>('/api/v1/statistics?period=24h&interval=hour');
    expect(stats.status).toBe(200);
    const s = stats.body.data;
    expect(s.overview).toMatchObject({
      total_tasks: 4,
      completed_tasks: 1,
      cancelled_tasks: 1,
      active_tasks: 2,
      success_rate: 1,
    });
    expect(s.status_distribution).toMatchObject({ waiting: 1, working: 1, completed: 1, cancelled: 1, failed: 0 });
    expect(s.priority_distribution).toEqual({ low: 1, medium: 0, high: 2, urgent: 1 });
    expect(s.performance_metrics.avg_processing_time).toBeGreaterThanOrEqual(0);
    expect(s.performance_metrics.tasks_per_hour).toBeCloseTo(1 / 24, 1);
    expect(s.time_series.length).toBeGreaterThanOrEqual(24);
    expect(s.time_series.reduce((n, p) => n + p.completed, 0)).toBe(1);
    const bad = await client.get('/api/v1/statistics?period=forever');
    expect(bad.status).toBe(400);
    expect(bad.body.error?.details?.field).toBe('period');
  });
});

describe('embedded smoke: resetDatabase helper', () => {
  it('leaves no rows behind', async () => {
    const t = await startTestApp();
    try {
      await apiClient(t, t.keys.client).post('/api/v1/tasks', { prompt: 'x' });
      await resetDatabase(t.db);
      const rows = await t.db.query('SELECT count(*)::int AS n FROM tasks');
      expect(rows[0].n).toBe(0);
    } finally {
      await t.close();
    }
  });
});
