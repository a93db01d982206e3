import { apiClient, type Api, type Task } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// Pull workers take the best ready task they may take (issue 23): a worker that names its tags
// or types is never handed work it cannot do, and never waits behind it either.
describe('Pull workers: next with tags and types', () => {
  let t: TestApp;
  let client: Api;
  let worker: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    worker = apiClient(t, t.keys.worker);
  });

  afterAll(async () => {
    await t.close();
  });

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await client.post<Task>('/api/v1/tasks', { prompt: 'p', ...body });
    expect(res.status).toBe(201);
    return res.body.data.task_id;
  };

  it('a worker with tags skips, without waiting behind, tasks needing tags it lacks; one without tags takes any', async () => {
    // A high-priority backlog this worker cannot take, in front of one it can.
    for (let i = 0; i < 5; i++) await submit({ type: 'render', priority: 'urgent', required_tags: ['gpu'] });
    const cpu = await submit({ type: 'render', priority: 'low', required_tags: ['cpu'] });
    const next = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=w-cpu&tags=cpu,linux');
    expect(next.status).toBe(200);
    expect(next.body.data?.task_id).toBe(cpu);
    // Nothing else for it: the gpu tasks stay pending.
    expect((await worker.get<Task | null>('/api/v1/tasks/next?worker_id=w-cpu&tags=cpu,linux')).body.data).toBeNull();
    const any = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=w-any');
    expect(any.body.data?.required_tags).toEqual(['gpu']);
  });

  it('a worker with types takes only those types', async () => {
    await submit({ type: 'video', priority: 'urgent' });
    const doc = await submit({ type: 'doc', priority: 'low' });
    const next = await worker.get<Task | null>('/api/v1/tasks/next?worker_id=w-doc&types=doc,pdf&tags=');
    expect(next.body.data?.task_id).toBe(doc);
  });

  it('refuses a malformed filter with VALIDATION_ERROR naming the field', async () => {
    const res = await worker.get(`/api/v1/tasks/next?worker_id=w&tags=${'x'.repeat(101)}`);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(JSON.stringify(res.body.error?.details)).toContain('tags');
  });
});
