import { apiClient, type Api, type Task } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** Bad input gets a 4xx with a code and the offending field, and changes nothing. */
describe('bad input', () => {
  let t: TestApp;
  let client: Api;
  let worker: Api;
  let existing: Task;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
    existing = (await client.post<Task>('/api/v1/tasks', { prompt: 'keep me', work_directory: '/a' })).body.data;
  });
  afterAll(() => t.close());

  const countTasks = async (): Promise<number> => (await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n;

  it.each([
    ['missing prompt and data', {}, 'prompt'],
    ['prompt of the wrong type', { prompt: 42 }, 'prompt'],
    ['relative work_directory', { prompt: 'x', work_directory: 'projects/mine' }, 'work_directory'],
    ['work_directory escaping with ..', { prompt: 'x', work_directory: '/a/../etc' }, 'work_directory'],
    ['unknown priority', { prompt: 'x', priority: 'asap' }, 'priority'],
    ['tags not an array', { prompt: 'x', tags: 'security' }, 'tags'],
    ['tags with a number', { prompt: 'x', tags: ['ok', 7] }, 'tags'],
    ['negative max_retries', { prompt: 'x', max_retries: -1 }, 'max_retries'],
    ['timeout as a string', { prompt: 'x', timeout_seconds: '60' }, 'timeout_seconds'],
    ['fractional timeout', { prompt: 'x', timeout_seconds: 1.5 }, 'timeout_seconds'],
    ['run_at not a date', { prompt: 'x', run_at: 'tomorrow' }, 'run_at'],
    ['data as an array', { prompt: 'x', data: [1, 2] }, 'data'],
    ['metadata as a string', { prompt: 'x', metadata: 'm' }, 'metadata'],
    ['unknown field', { prompt: 'x', owner: 'me' }, 'owner'],
  ])('POST /tasks with %s → 400 naming %s', async (_name, body, field) => {
    const before = await countTasks();
    const res = await client.post('/api/v1/tasks', body);
    expect(res.status).toBe(400);
    expect(res.body.success).toBe(false);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(res.body.error?.details?.field).toBe(field);
    expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    expect(await countTasks()).toBe(before);
  });

  it('gives the seed message for a relative work_directory', async () => {
    const res = await client.post('/api/v1/tasks', { prompt: 'x', work_directory: 'rel' });
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: 'Invalid input data',
      details: { field: 'work_directory', message: 'Work directory must be an absolute path' },
    });
  });

  it('rejects a 2 MB body with 413 PAYLOAD_TOO_LARGE', async () => {
    const before = await countTasks();
    const res = await client.post('/api/v1/tasks', { prompt: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { field: 'body' } });
    expect(await countTasks()).toBe(before);
  });

  it('rejects malformed JSON with 400 naming the body', async () => {
    const res = await client.post('/api/v1/tasks', '{"prompt": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'body' } });
  });

  it.each([
    ['GET', '/api/v1/tasks/not-a-uuid'],
    ['GET', "/api/v1/tasks/1'%20OR%20'1'='1"],
    ['POST', '/api/v1/tasks/123/cancel'],
    ['GET', '/api/v1/tasks/xyz/logs'],
  ])('%s %s (non-UUID id) → 400 naming id', async (method, path) => {
    const res = method === 'GET' ? await client.get(path) : await client.post(path, {});
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'id' } });
  });

  it.each([
    ['GET', ''],
    ['GET', '/logs'],
    ['POST', '/cancel'],
    ['POST', '/retry'],
    ['POST', '/reply'],
    ['DELETE', ''],
  ])('%s /tasks/<unknown uuid>%s → 404 NOT_FOUND', async (method, suffix) => {
    const id = '00000000-0000-4000-8000-000000000000';
    const path = `/api/v1/tasks/${id}${suffix}`;
    const body = suffix === '/reply' ? { message: 'hi' } : {};
    const res =
      method === 'GET'
        ? await client.get(path)
        : method === 'DELETE'
          ? await client.delete(path)
          : await client.post(path, body);
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ code: 'NOT_FOUND', message: `Task not found: ${id}` });
  });

  it.each([
    ['/acquire', { worker_id: 'w' }],
    ['/complete', { result: { status: 'success' } }],
    ['/fail', { error: 'x' }],
    ['/progress', { progress: 5 }],
    ['/heartbeat', {}],
  ])('worker POST /tasks/<unknown uuid>%s → 404', async (suffix, body) => {
    const res = await worker.post(`/api/v1/tasks/00000000-0000-4000-8000-000000000001${suffix}`, body);
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('NOT_FOUND');
  });

  it.each([
    ['complete without result', '/complete', { original_prompt: 'x' }, 'result'],
    ['complete with result.status missing', '/complete', { result: { output: 'x' } }, 'result.status'],
    [
      'complete with duration as text',
      '/complete',
      { result: { status: 'success', duration: 'long' } },
      'result.duration',
    ],
    ['progress above 100', '/progress', { progress: 101 }, 'progress'],
    ['progress as text', '/progress', { progress: 'half' }, 'progress'],
    ['attempt as text', '/heartbeat', { attempt: 'one' }, 'attempt'],
    ['acquire without worker_id', '/acquire', {}, 'worker_id'],
    ['fail without error', '/fail', {}, 'error'],
  ])('worker %s → 400 naming the field, task unchanged', async (_name, suffix, body, field) => {
    const before = (await client.get<Task>(`/api/v1/tasks/${existing.task_id}`)).body.data;
    const res = await worker.post(`/api/v1/tasks/${existing.task_id}${suffix}`, body);
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.field).toBe(field);
    expect((await client.get<Task>(`/api/v1/tasks/${existing.task_id}`)).body.data).toEqual(before);
  });

  it('reports on a task nobody holds are a 409 CONFLICT', async () => {
    const res = await worker.post(`/api/v1/tasks/${existing.task_id}/complete`, { result: { status: 'success' } });
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('CONFLICT');
  });

  it.each([
    ['status', "completed'; DROP TABLE tasks;--"],
    ['priority', 'high OR 1=1'],
    ['sort', 'id; DELETE FROM tasks'],
    ['order', 'desc, (select 1)'],
    ['limit', '1000'],
    ['limit', 'ten'],
    ['offset', '-1'],
    ['created_after', "2024-01-01' OR '1'='1"],
  ])('list filter %s=%s → 400 naming it', async (field, value) => {
    const res = await client.get(`/api/v1/tasks?${field}=${encodeURIComponent(value)}`);
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.field).toBe(field);
    expect(await countTasks()).toBeGreaterThan(0);
  });

  it('SQL-looking values in free-text filters are just values', async () => {
    const res = await client.get<{ tasks: Task[] }>(
      `/api/v1/tasks?tag=${encodeURIComponent("x' OR '1'='1")}&type=${encodeURIComponent('prompt; --')}`,
    );
    expect(res.status).toBe(200);
    expect(res.body.data.tasks).toEqual([]);
    const next = await worker.get(`/api/v1/tasks/next?worker_id=w&work_path=${encodeURIComponent("/a%' OR '1'='1")}`);
    expect(next.status).toBe(200);
    expect(next.body.data).toBeNull();
  });

  it('next needs worker_id and an absolute work_path', async () => {
    const noWorker = await worker.get('/api/v1/tasks/next?work_path=/a');
    expect(noWorker.body.error?.details?.field).toBe('worker_id');
    const relative = await worker.get('/api/v1/tasks/next?work_path=a&worker_id=w');
    expect(relative.body.error?.details?.field).toBe('work_path');
  });

  it('an over-long Idempotency-Key header is refused', async () => {
    const res = await client.post('/api/v1/tasks', { prompt: 'x' }, { 'Idempotency-Key': 'k'.repeat(300) });
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.field).toBe('Idempotency-Key');
  });

  it('unknown routes are 404 in the envelope', async () => {
    const res = await client.get('/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
  });
});
