/* eslint-disable @typescript-eslint/no-explicit-any -- the document's client is untyped JavaScript, kept as written */
import { startTestApp, type TestApp } from '../support/test-app.js';

// Seed 002 (Task Orchestrator): the document's JavaScript client, as written, with one key
// (holding the client and worker roles), against a real hub; shapes checked field by field.
class TaskOrchestratorClient {
  private readonly headers: Record<string, string>;
  constructor(
    private readonly baseUrl: string,
    apiKey: string,
  ) {
    this.headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
  }
  async createTask(
    workDirectory: string,
    prompt: string,
    priority = 'medium',
    tags: string[] = [],
  ): Promise<Record<string, any>> {
    const data = { work_directory: workDirectory, prompt, priority, tags };
    const response = await fetch(`${this.baseUrl}/api/v1/tasks`, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify(data),
    });
    return (await response.json()) as Record<string, any>;
  }
  async getNextTask(workPath: string, workerId: string): Promise<Record<string, any>> {
    const params = new URLSearchParams({ work_path: workPath, worker_id: workerId });
    const response = await fetch(`${this.baseUrl}/api/v1/tasks/next?${params}`, {
      method: 'GET',
      headers: this.headers,
    });
    return (await response.json()) as Record<string, any>;
  }
  async completeTask(taskId: string, originalPrompt: string, result: unknown): Promise<Record<string, any>> {
    const data = { original_prompt: originalPrompt, result };
    const response = await fetch(`${this.baseUrl}/api/v1/tasks/${taskId}/complete`, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify(data),
    });
    return (await response.json()) as Record<string, any>;
  }
  async getTask(taskId: string): Promise<Record<string, any>> {
    const response = await fetch(`${this.baseUrl}/api/v1/tasks/${taskId}`, { method: 'GET', headers: this.headers });
    return (await response.json()) as Record<string, any>;
  }
}

describe('seed 002 (Task Orchestrator) as written', () => {
  let t: TestApp;
  let client: TaskOrchestratorClient;

  beforeAll(async () => {
    t = await startTestApp();
    const made = await fetch(`${t.url}/api/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'orchestrator', roles: ['client', 'worker'] }),
    });
    client = new TaskOrchestratorClient(t.url, ((await made.json()) as { data: { key: string } }).data.key);
  });
  afterAll(() => t.close());

  it("runs the document's main(): create, next, complete, with the documented shapes", async () => {
    const task = await client.createTask(
      '/home/user/projects/my-project',
      'Analyze the codebase for security issues',
      'high',
      ['security', 'analysis'],
    );
    expect(task).toMatchObject({
      success: true,
      data: {
        task_id: expect.any(String),
        status: 'waiting',
        priority: 'high',
        work_directory: '/home/user/projects/my-project',
        tags: ['security', 'analysis'],
        created_at: expect.any(String),
      },
      error: null,
      timestamp: expect.any(String),
    });
    const nextTask = await client.getNextTask('/home/user/projects/my-project', 'worker-001');
    expect(nextTask.data).toMatchObject({
      task_id: task.data.task_id,
      prompt: 'Analyze the codebase for security issues',
      work_directory: '/home/user/projects/my-project',
      priority: 'high',
      tags: ['security', 'analysis'],
    });
    const result = await client.completeTask(nextTask.data.task_id, nextTask.data.prompt, {
      status: 'success',
      output: 'Analysis completed successfully',
      duration: 3000,
    });
    expect(result).toMatchObject({
      success: true,
      data: {
        task_id: task.data.task_id,
        status: 'completed',
        completed_at: expect.any(String),
        worker_id: 'worker-001',
      },
      error: null,
    });
    expect((await client.getTask(task.data.task_id)).data).toMatchObject({ status: 'completed' });
    // No task left: data null.
    expect(await client.getNextTask('/home/user/projects/my-project', 'worker-001')).toMatchObject({
      success: true,
      data: null,
      error: null,
    });
  });

  it("answers the document's errors: validation, not found, and CONFLICT for a concurrency conflict", async () => {
    const bad = await client.createTask('relative/path', 'x');
    expect(bad).toMatchObject({
      success: false,
      data: null,
      error: {
        code: 'VALIDATION_ERROR',
        message: 'Invalid input data',
        details: { field: 'work_directory', message: 'Work directory must be an absolute path' },
      },
    });
    const missing = await client.getTask('550e8400-e29b-41d4-a716-446655440000');
    expect(missing).toMatchObject({
      success: false,
      data: null,
      error: { code: 'NOT_FOUND', message: 'Task not found: 550e8400-e29b-41d4-a716-446655440000' },
    });
    const task = await client.createTask('/srv/conflict', 'race');
    await client.getNextTask('/srv/conflict', 'worker-a');
    const stolen = await fetch(`${t.url}/api/v1/tasks/${task.data.task_id}/complete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.worker}`, 'content-type': 'application/json' },
      body: JSON.stringify({ worker_id: 'worker-b', result: { status: 'success' } }),
    });
    expect(stolen.status).toBe(409);
    expect(((await stolen.json()) as { error: unknown }).error).toMatchObject({ code: 'CONFLICT' });
  });

  it('answers /health with the documented components and metrics; queue_size only for a key (docs/security.md)', async () => {
    const health = (await (
      await fetch(`${t.url}/health`, { headers: { Authorization: `Bearer ${t.keys.client}` } })
    ).json()) as Record<string, any>;
    expect(health).toMatchObject({
      status: 'healthy',
      version: expect.any(String),
      uptime: expect.any(String),
      components: { database: { healthy: true, response_time: expect.any(Number), last_checked: expect.any(String) } },
    });
    // All three documented components, on a default hub too (no Redis, no LLM provider): a client
    // reading components.cache.healthy finds it; the two the hub runs without say so.
    for (const name of ['cache', 'external_services']) {
      expect(health.components[name]).toMatchObject({
        status: 'not_configured',
        healthy: true,
        response_time: expect.any(Number),
        last_checked: expect.any(String),
      });
    }
    expect(Object.values(health.components).every((c: any) => c.healthy === true)).toBe(true);
    expect(health.metrics).toMatchObject({
      memory_usage: expect.stringMatching(/^\d+MB$/),
      cpu_usage: expect.any(Number),
      active_connections: expect.any(Number),
      queue_size: expect.any(Number),
    });
    // The document's curl sends no key: the same fields, the task count null.
    const anonymous = (await (await fetch(`${t.url}/health`)).json()) as Record<string, any>;
    expect(anonymous).toMatchObject({ status: 'healthy', components: { database: { healthy: true } } });
    expect(anonymous.metrics).toMatchObject({ active_connections: expect.any(Number), queue_size: null });
  });
});
