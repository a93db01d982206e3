import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface CodexBody {
  success: boolean;
  data: Record<string, unknown>;
  message?: string;
  error?: { code: string; message: string; details: Record<string, unknown> | null };
  timestamp: string;
  requestId: string;
}

/** The seed's Node.js CodexFatherClient, unchanged except for the Authorization header the hub requires. */
class CodexFatherClient {
  constructor(
    private readonly baseUrl: string,
    private readonly key: string,
  ) {}

  async submitTask(prompt: string, environment = 'nodejs', options: Record<string, unknown> = {}): Promise<CodexBody> {
    const response = await fetch(`${this.baseUrl}/tasks`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${this.key}`,
      },
      body: JSON.stringify({
        prompt,
        environment,
        ...options,
      }),
    });
    return (await response.json()) as CodexBody;
  }

  async getTaskStatus(taskId: string): Promise<CodexBody> {
    const response = await fetch(`${this.baseUrl}/tasks/${taskId}`, {
      headers: { Authorization: `Bearer ${this.key}` },
    });
    return (await response.json()) as CodexBody;
  }

  async getTaskLogs(taskId: string): Promise<CodexBody> {
    const response = await fetch(`${this.baseUrl}/tasks/${taskId}/logs`, {
      headers: { Authorization: `Bearer ${this.key}` },
    });
    return (await response.json()) as CodexBody;
  }
}

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

describe('Codex Father 2.0 (seed 000) REST compatibility', () => {
  let t: TestApp;
  let api: Api;
  let worker: Api;
  let codex: CodexFatherClient;

  /** A pull worker takes the task and finishes it through the canonical API. */
  async function finish(taskId: string, output: string): Promise<void> {
    const acquired = await worker.post(`/api/v1/tasks/${taskId}/acquire`, { worker_id: 'codex-worker' });
    expect(acquired.status).toBe(200);
    const done = await worker.post(`/api/v1/tasks/${taskId}/complete`, {
      worker_id: 'codex-worker',
      result: { status: 'success', output },
    });
    expect(done.status).toBe(200);
  }

  const body = (r: { body: unknown }): CodexBody => r.body as CodexBody;

  beforeAll(async () => {
    t = await startTestApp();
    api = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
    codex = new CodexFatherClient(t.url, t.keys.client);
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await truncate(t.db, 'task_events, tasks');
  });

  it('runs the seed Node.js/Python client flow: submit → queued → completed with result and duration → logs', async () => {
    const task = await codex.submitTask('创建一个 Express 服务器', 'nodejs', {
      priority: 'high',
      timeout: 300000,
      files: ['src/components/', 'package.json'],
    });
    expect(task).toMatchObject({
      success: true,
      data: { status: 'queued', priority: 'high' },
      message: '任务已成功提交',
    });
    // No task of this type has finished yet: no estimate rather than a made-up one.
    expect(task.data).not.toHaveProperty('estimatedDuration');
    expect(task.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(task.requestId).toMatch(/\S+/);
    const taskId = task.data.taskId as string;
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);

    // The hub stored the mapping: timeout ms → timeout_seconds, files, environment.
    const canonical = await api.get<{ timeout_seconds: number; files: string[]; environment: string; prompt: string }>(
      `/api/v1/tasks/${taskId}`,
    );
    expect(canonical.body.data).toMatchObject({
      timeout_seconds: 300,
      files: ['src/components/', 'package.json'],
      environment: 'nodejs',
      prompt: '创建一个 Express 服务器',
    });

    const queued = await codex.getTaskStatus(taskId);
    expect(queued).toMatchObject({
      success: true,
      data: {
        id: taskId,
        status: 'queued',
        progress: 0,
        startTime: null,
        duration: null,
        result: null,
        error: null,
        completedAt: null,
        priority: 'high',
        environment: 'nodejs',
      },
    });

    await finish(taskId, 'Express server created');

    const status = await codex.getTaskStatus(taskId);
    expect(status.data).toMatchObject({
      id: taskId,
      status: 'completed',
      progress: 100,
      result: { status: 'success', output: 'Express server created' },
      error: null,
    });
    const start = new Date(status.data.startTime as string).getTime();
    const end = new Date(status.data.completedAt as string).getTime();
    expect(status.data.duration).toBe(end - start);
    expect(status.data.duration).toBeGreaterThanOrEqual(0);
    expect(new Date(status.data.createdAt as string).getTime()).toBeLessThanOrEqual(start);

    const logs = await codex.getTaskLogs(taskId);
    expect(logs.success).toBe(true);
    expect(logs.data.taskId).toBe(taskId);
    const entries = logs.data.logs as {
      timestamp: string;
      level: string;
      type: string;
      message: string;
      attempt: number;
    }[];
    expect(entries.map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'completed']));
    const completed = entries.find((e) => e.type === 'completed');
    expect(completed).toMatchObject({ level: 'info', attempt: 1 });
    expect(typeof completed?.message).toBe('string');
    expect(entries.every((e) => !Number.isNaN(Date.parse(e.timestamp)))).toBe(true);
  });

  it('defaults like the Python client (environment only): medium priority, hub default timeout', async () => {
    const task = await codex.submitTask('创建一个数据分析脚本', 'python');
    const canonical = await api.get<{ timeout_seconds: number; priority: string }>(
      `/api/v1/tasks/${task.data.taskId as string}`,
    );
    expect(task.data).toMatchObject({ status: 'queued', priority: 'medium' });
    expect(canonical.body.data.timeout_seconds).toBe(1800);
    // ms are rounded up to whole seconds
    const odd = await codex.submitTask('x', 'python', { timeout: 1500 });
    const oddRow = await api.get<{ timeout_seconds: number }>(`/api/v1/tasks/${odd.data.taskId as string}`);
    expect(oddRow.body.data.timeout_seconds).toBe(2);
  });

  it('lists with status, limit, page and camelCase sort', async () => {
    const ids: string[] = [];
    for (const priority of ['low', 'urgent', 'medium', 'high']) {
      ids.push((await codex.submitTask(`task ${priority}`, 'nodejs', { priority })).data.taskId as string);
    }
    await finish(ids[0], 'done');

    const queued = body(await api.get('/tasks?status=queued&limit=2&sort=priority'));
    expect(queued.success).toBe(true);
    const tasks = queued.data.tasks as Record<string, unknown>[];
    expect(tasks.map((x) => x.priority)).toEqual(['urgent', 'high']);
    expect(tasks[0]).toMatchObject({ id: ids[1], status: 'queued', progress: 0, startTime: null });
    expect(Object.keys(tasks[0]).sort()).toEqual(['createdAt', 'id', 'priority', 'progress', 'startTime', 'status']);
    expect(queued.data.pagination).toEqual({ page: 1, limit: 2, total: 3, hasMore: true });

    const page2 = body(await api.get('/tasks?status=queued&limit=2&page=2&sort=priority'));
    expect((page2.data.tasks as Record<string, unknown>[]).map((x) => x.id)).toEqual([ids[2]]);
    expect(page2.data.pagination).toEqual({ page: 2, limit: 2, total: 3, hasMore: false });

    const done = body(await api.get('/tasks?status=completed&sort=startTime'));
    expect((done.data.tasks as Record<string, unknown>[]).map((x) => [x.id, x.status])).toEqual([
      [ids[0], 'completed'],
    ]);
    expect((done.data.tasks as Record<string, unknown>[])[0].startTime).toMatch(/^\d{4}-/);

    const all = body(await api.get('/tasks?sort=createdAt&order=asc'));
    expect((all.data.tasks as Record<string, unknown>[]).map((x) => x.id)).toEqual(ids);
    expect(all.data.pagination).toEqual({ page: 1, limit: 50, total: 4, hasMore: false });

    const bad = await api.get('/tasks?sort=created_at');
    expect(bad.status).toBe(400);
    expect(body(bad).error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'sort' } });
    const badStatus = await api.get('/tasks?status=pending');
    expect(badStatus.status).toBe(400);
    expect(body(badStatus).error?.details).toMatchObject({ field: 'status' });
    const tooMany = await api.get('/tasks?limit=201');
    expect(tooMany.status).toBe(400);
    expect(body(tooMany).error?.details).toMatchObject({ field: 'limit' });
    const page0 = await api.get('/tasks?page=0');
    expect(page0.status).toBe(400);
    expect(body(page0).error?.details).toMatchObject({ field: 'page' });
  });

  it('reply re-queues a completed task and counts the messages', async () => {
    const taskId = (await codex.submitTask('写一个函数', 'nodejs')).data.taskId as string;
    await finish(taskId, 'first answer');

    const replied = await api.post(`/tasks/${taskId}/reply`, { message: '请同时添加单元测试' });
    expect(replied.status).toBe(200);
    expect(body(replied)).toMatchObject({ success: true, data: { taskId, status: 'queued', messages: 1 } });
    expect(typeof body(replied).message).toBe('string');

    const status = await codex.getTaskStatus(taskId);
    expect(status.data).toMatchObject({ status: 'queued', result: null, startTime: null, duration: null });

    const again = await api.post(`/tasks/${taskId}/reply`, { message: '还有文档' });
    expect(body(again).data).toEqual({ taskId, status: 'queued', messages: 2 });

    const logs = await codex.getTaskLogs(taskId);
    expect((logs.data.logs as { type: string }[]).filter((l) => l.type === 'reply')).toHaveLength(2);

    // `message` is optional (the document sends no body), but a message that is not text is refused.
    for (const bad of [{ message: 5 }, { message: '' }, { message: ['a'] }]) {
      const refused = await api.post(`/tasks/${taskId}/reply`, bad);
      expect(refused.status).toBe(400);
      expect(body(refused).error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'message' } });
    }
  });

  it('reply without a message continues the task: re-queues a finished one, leaves a running one running', async () => {
    const taskId = (await codex.submitTask('写一个函数', 'nodejs')).data.taskId as string;
    await finish(taskId, 'first answer');

    const continued = await api.post(`/tasks/${taskId}/reply`);
    expect(continued.status).toBe(200);
    expect(body(continued)).toMatchObject({ success: true, data: { taskId, status: 'queued', messages: 0 } });
    const logs = await codex.getTaskLogs(taskId);
    expect(logs.data.logs).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'reply', message: 'Continued; task re-queued' })]),
    );

    // Running: nothing to add; the answer is the task as it is, and it stays with its worker.
    expect((await worker.post(`/api/v1/tasks/${taskId}/acquire`, { worker_id: 'codex-worker' })).status).toBe(200);
    const running = await api.post(`/tasks/${taskId}/reply`, {});
    expect(running.status).toBe(200);
    expect(body(running).data).toEqual({ taskId, status: 'running', messages: 0 });
    const done = await worker.post(`/api/v1/tasks/${taskId}/complete`, {
      worker_id: 'codex-worker',
      result: { status: 'success', output: 'second answer' },
    });
    expect(done.status).toBe(200);
  });

  it('DELETE cancels, then 409 on a second DELETE', async () => {
    const taskId = (await codex.submitTask('长任务', 'nodejs')).data.taskId as string;
    const cancelled = await api.delete(`/tasks/${taskId}`);
    expect(cancelled.status).toBe(200);
    expect(body(cancelled)).toMatchObject({ success: true, data: { taskId, status: 'cancelled' } });

    const status = await codex.getTaskStatus(taskId);
    expect(status.data).toMatchObject({ status: 'cancelled', completedAt: null });
    const canonical = await api.get<{ reason: string }>(`/api/v1/tasks/${taskId}`);
    expect(canonical.body.data.reason).toBe('Cancelled by client');

    const second = await api.delete(`/tasks/${taskId}`);
    expect(second.status).toBe(409);
    expect(body(second)).toMatchObject({
      success: false,
      error: { code: 'CONFLICT', details: { state: 'cancelled' } },
    });
    expect(body(second).requestId).toBe(second.headers.get('x-request-id'));
  });

  it('answers bad input and unknown tasks in the seed error shape', async () => {
    const noPrompt = await api.post('/tasks', { environment: 'nodejs' });
    expect(noPrompt.status).toBe(400);
    expect(body(noPrompt)).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'prompt' } },
    });
    expect(body(noPrompt).timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(body(noPrompt).requestId).toBe(noPrompt.headers.get('x-request-id'));
    expect(body(noPrompt)).not.toHaveProperty('data');

    const textTimeout = await api.post('/tasks', { prompt: 'x', timeout: '5 minutes' });
    expect(textTimeout.status).toBe(400);
    expect(body(textTimeout).error?.details).toMatchObject({ field: 'timeout' });

    const shortTimeout = await api.post('/tasks', { prompt: 'x', timeout: 999 });
    expect(shortTimeout.status).toBe(400);
    expect(body(shortTimeout).error?.details).toMatchObject({ field: 'timeout' });

    const badPriority = await api.post('/tasks', { prompt: 'x', priority: 'critical' });
    expect(badPriority.status).toBe(400);
    expect(body(badPriority).error?.details).toMatchObject({ field: 'priority' });

    const badFiles = await api.post('/tasks', { prompt: 'x', files: 'package.json' });
    expect(badFiles.status).toBe(400);
    expect(body(badFiles).error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'files' } });

    const notJson = await api.post('/tasks', '{"prompt":', { 'Content-Type': 'application/json' });
    expect(notJson.status).toBe(400);
    expect(body(notJson)).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'body' } },
    });

    // The seed's own id form is simply an id that does not exist here.
    const badId = await codex.getTaskStatus('task-1704067200000-abc123');
    expect(badId).toMatchObject({
      success: false,
      error: { code: 'TASK_NOT_FOUND', details: { taskId: 'task-1704067200000-abc123' } },
    });

    for (const res of [
      await api.get(`/tasks/${UNKNOWN_ID}`),
      await api.get(`/tasks/${UNKNOWN_ID}/logs`),
      await api.delete(`/tasks/${UNKNOWN_ID}`),
      await api.post(`/tasks/${UNKNOWN_ID}/reply`, { message: 'hi' }),
    ]) {
      expect(res.status).toBe(404);
      expect(body(res)).toMatchObject({
        success: false,
        error: { code: 'TASK_NOT_FOUND', details: { taskId: UNKNOWN_ID } },
      });
    }

    // Nothing was stored by the rejected submissions.
    expect(body(await api.get('/tasks')).data.pagination).toMatchObject({ total: 0 });
  });

  it('keeps the hub auth: no key is 401 in the seed error shape', async () => {
    const anon = apiClient(t, undefined);
    const res = await anon.post('/tasks', { prompt: 'x' });
    expect(res.status).toBe(401);
    expect(body(res)).toMatchObject({ success: false, error: { code: 'UNAUTHORIZED' } });
    expect(body(await api.get('/tasks')).data.pagination).toMatchObject({ total: 0 });
  });
});
