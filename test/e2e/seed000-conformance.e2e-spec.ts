import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { envFromConfigFile } from '../../src/config/config-file.js';
import { apiClient, type Api } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * Seed 000 (Codex Father 2.0 HTTP API) run as its document writes it: its curl calls (fetch
 * with no extra headers), its JavaScript and Python clients, its WebSocket examples and its
 * config files. One test per line of CONFORMANCE.md "000 Codex Father" that was fixed.
 * Auth is off (`AUTH_REQUIRED=false`, the README's local-trial line), so no call adds a key.
 */

type Json = Record<string, unknown>;
interface Message {
  type: string;
  data: Json;
}

/** The document's browser WebSocket, with `onmessage` recording every message. */
class SeedSocket {
  readonly messages: Message[] = [];
  readonly ws: WebSocket;
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.onmessage = (event): void => {
      this.messages.push(JSON.parse(String(event.data)) as Message);
    };
  }
  opened(): Promise<void> {
    return new Promise((ok, fail) => {
      this.ws.onopen = (): void => ok();
      this.ws.onerror = (e): void => fail(e.error as Error);
    });
  }
  async waitFor(match: (m: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no matching message; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const curl = async (url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: Json }> => {
  const res = await fetch(url, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text.startsWith('{') ? (JSON.parse(text) as Json) : { text },
  };
};
const post = (url: string, body: unknown): Promise<{ status: number; headers: Headers; body: Json }> =>
  curl(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

describe('seed 000 Codex Father: the document, as written', () => {
  let t: TestApp;
  let worker: Api;
  let base: string;
  const sockets: SeedSocket[] = [];

  beforeAll(async () => {
    t = await startTestApp({ AUTH_REQUIRED: 'false', METRICS_UPDATE_INTERVAL_MS: '200' });
    base = t.url;
    worker = apiClient(t, t.keys.worker);
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.ws.close());
    await truncate(t.db, 'task_events, tasks');
  });
  afterAll(() => t.close());

  const socket = async (): Promise<SeedSocket> => {
    const s = new SeedSocket(`${base.replace('http://', 'ws://')}/ws`);
    sockets.push(s);
    await s.opened();
    return s;
  };
  const submit = async (body: Json): Promise<string> => {
    const res = await post(`${base}/tasks`, body);
    expect(res.status).toBe(201);
    return (res.body.data as Json).taskId as string;
  };
  const acquire = async (id: string, workerId = 'w1'): Promise<void> => {
    expect((await worker.post(`/api/v1/tasks/${id}/acquire`, { worker_id: workerId })).status).toBe(200);
  };

  it('curl /metrics (no Accept): {success, data: {tasks, performance, system}} with "128MB", "15%" and uptime in seconds', async () => {
    await submit({ prompt: '创建一个用户登录组件', environment: 'nodejs', priority: 'high' });
    const before = process.uptime(); // the hub runs in this process
    const res = await curl(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.body).toMatchObject({
      success: true,
      data: {
        tasks: { total: 1, running: 0, pending: 1, completed: 0 },
        performance: {
          avgExecutionTime: expect.any(Number),
          successRate: expect.any(Number),
          throughput: expect.any(Number),
        },
        system: {
          uptime: expect.any(Number),
          memory: expect.stringMatching(/^\d+MB$/),
          cpu: expect.stringMatching(/^\d+(\.\d+)?%$/),
        },
      },
    });
    const uptime = ((res.body.data as Json).system as Json).uptime as number;
    expect(uptime).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(uptime).toBeLessThanOrEqual(Math.ceil(process.uptime()) + 1);
  });

  it('/metrics: Prometheus text for scrapers (0.0.4, OpenMetrics) and ?format=prometheus', async () => {
    for (const init of [
      { headers: { Accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' } },
      { headers: { Accept: 'application/openmetrics-text;version=1.0.0' } },
      {},
    ]) {
      const url = 'headers' in init ? `${base}/metrics` : `${base}/metrics?format=prometheus`;
      const res = await fetch(url, init);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toMatch(/^taskhub_tasks_submitted_total \d+$/m);
    }
  });

  it('/ws: on connect `connected` then the initial status; metrics_update arrives without asking', async () => {
    const ws = await socket();
    const first = await ws.waitFor((m) => m.type === 'connected');
    const status = await ws.waitFor((m) => m.type === 'status');
    expect(ws.messages.indexOf(first)).toBeLessThan(ws.messages.indexOf(status));
    expect(status.data).toMatchObject({
      status: 'running',
      tasks: { total: 0, pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
    });
    // The monitoring example: `if (message.type === 'metrics_update') console.log('系统指标更新:', message.data)`.
    const update = await ws.waitFor((m) => m.type === 'metrics_update', 3000);
    expect(update.data).toMatchObject({
      tasks: { total: 0 },
      system: { memory: expect.stringMatching(/MB$/), cpu: expect.stringMatching(/%$/) },
    });
    // The connection example asks for the state too (`get_status`).
    ws.ws.send(JSON.stringify({ type: 'get_status' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(ws.messages.filter((m) => m.type === 'status')).toHaveLength(2);
  });

  it('/ws pushes in the document words: status "queued", priority "medium", task_failed error a printable message', async () => {
    const ws = await socket();
    await ws.waitFor((m) => m.type === 'status');
    const taskId = await submit({ prompt: '创建一个数据分析脚本', environment: 'python' });
    const created = await ws.waitFor((m) => m.type === 'task_created');
    expect(created.data).toMatchObject({ taskId, status: 'queued', priority: 'medium' });

    await acquire(taskId);
    const started = await ws.waitFor((m) => m.type === 'task_started');
    expect(started.data).toMatchObject({ taskId, status: 'running' });
    await worker.post(`/api/v1/tasks/${taskId}/fail`, { worker_id: 'w1', error: 'Compiler crashed', retryable: false });
    const failed = await ws.waitFor((m) => m.type === 'task_failed');
    // The document's handler: console.error(`任务失败: ${message.data.error}`)
    expect(`任务失败: ${failed.data.error as string}`).toBe('任务失败: Compiler crashed');
    expect(failed.data).toMatchObject({
      status: 'failed',
      error_detail: expect.objectContaining({ message: 'Compiler crashed' }),
    });
  });

  it('GET /tasks/task-123 (and the other :id routes) answer 404 TASK_NOT_FOUND with details.timestamp', async () => {
    const calls = [
      curl(`${base}/tasks/task-123`),
      curl(`${base}/tasks/task-1704067200000-abc123/logs`),
      curl(`${base}/tasks/task-123`, { method: 'DELETE' }),
      post(`${base}/tasks/task-123/reply`, { message: '继续' }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({
        success: false,
        error: { code: 'TASK_NOT_FOUND', details: { taskId: expect.stringMatching(/^task-/) } },
      });
      const details = (res.body.error as Json).details as Json;
      expect(details.timestamp).toBe(res.body.timestamp);
      expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
    }
  });

  it('POST /tasks/{id}/reply with no body ("继续执行任务") continues the task: a finished one is queued again', async () => {
    const taskId = await submit({ prompt: '写一个函数', environment: 'nodejs' });
    await acquire(taskId);
    const done = { worker_id: 'w1', result: { status: 'success', output: 'v1' } };
    expect((await worker.post(`/api/v1/tasks/${taskId}/complete`, done)).status).toBe(200);

    // curl -X POST http://localhost:3000/tasks/{id}/reply — no body, no Content-Type.
    const continued = await curl(`${base}/tasks/${taskId}/reply`, { method: 'POST' });
    expect(continued.status).toBe(200);
    expect(continued.body).toMatchObject({ success: true, data: { taskId, status: 'queued', messages: 0 } });
    expect(((await curl(`${base}/tasks/${taskId}`)).body.data as Json).status).toBe('queued');
    // Still queued: a second one leaves it as it is, and an empty JSON object is the same call.
    const again = await post(`${base}/tasks/${taskId}/reply`, {});
    expect(again.status).toBe(200);
    expect(again.body.data).toEqual({ taskId, status: 'queued', messages: 0 });
    const logs = (await curl(`${base}/tasks/${taskId}/logs`)).body.data as { logs: { type: string }[] };
    expect(logs.logs.filter((l) => l.type === 'reply')).toHaveLength(1);
  });

  it('error details carry the timestamp on every Codex error', async () => {
    const res = await post(`${base}/tasks`, { environment: 'nodejs' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { field: 'prompt', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    });
  });

  it('Python submit_task(**kwargs): unknown keys are accepted and kept in metadata', async () => {
    // client.submit_task("创建一个数据分析脚本", environment="python", callback_url=..., owner=...)
    const res = await post(`${base}/tasks`, {
      prompt: '创建一个数据分析脚本',
      environment: 'python',
      callback_url: 'http://ci.test/hook',
      owner: { team: 'data' },
      metadata: { ticket: 7 },
    });
    expect(res.status).toBe(201);
    const taskId = (res.body.data as Json).taskId as string;
    const canonical = await worker.get<{ metadata: Json }>(`/api/v1/tasks/${taskId}`);
    expect(canonical.body.data.metadata).toEqual({
      callback_url: 'http://ci.test/hook',
      owner: { team: 'data' },
      ticket: 7,
    });
  });

  it('estimatedDuration is the recent mean run time of the same type, and absent without history', async () => {
    const fresh = await post(`${base}/tasks`, { prompt: 'x', type: 'never-run-before', timeout: 300000 });
    expect(fresh.body.data).not.toHaveProperty('estimatedDuration');

    // Two tasks of one type completed through the canonical API, one failed (not counted).
    const durations: number[] = [];
    for (const [i, outcome] of (['complete', 'complete', 'fail'] as const).entries()) {
      const id = (await worker.post<{ task_id: string }>('/api/v1/tasks', { prompt: `e${i}`, type: 'estimate-demo' }))
        .body.data.task_id;
      await acquire(id);
      await new Promise((r) => setTimeout(r, 60 * (i + 1)));
      const body =
        outcome === 'complete'
          ? { worker_id: 'w1', result: { status: 'success', output: 'ok' } }
          : { worker_id: 'w1', error: 'no', retryable: false };
      expect((await worker.post(`/api/v1/tasks/${id}/${outcome}`, body)).status).toBe(200);
      if (outcome === 'complete')
        durations.push(((await curl(`${base}/tasks/${id}`)).body.data as Json).duration as number);
    }
    const res = await post(`${base}/tasks`, { prompt: '同类任务', type: 'estimate-demo' });
    const estimate = (res.body.data as Json).estimatedDuration as number;
    const mean = (durations[0] + durations[1]) / 2;
    expect(Math.abs(estimate - mean)).toBeLessThanOrEqual(2);
    expect(estimate).toBeGreaterThanOrEqual(60);
  });

  it('/status: requestId, the document task words and uptime in ms like /healthz', async () => {
    await submit({ prompt: 'a' });
    const before = process.uptime() * 1000;
    const [status, health] = await Promise.all([curl(`${base}/status`), curl(`${base}/healthz`)]);
    const after = process.uptime() * 1000;
    expect(status.body.requestId).toBe(status.headers.get('x-request-id'));
    const data = status.body.data as Json;
    expect(Object.keys(data.tasks as Json).sort()).toEqual([
      'cancelled',
      'completed',
      'failed',
      'pending',
      'running',
      'total',
    ]);
    expect(data.tasks).toMatchObject({ total: 1, pending: 1 });
    expect(health.body.tasks).toMatchObject({ pending: 1, running: 0, completed: 0 });
    for (const uptime of [data.uptime as number, health.body.uptime as number]) {
      expect(uptime).toBeGreaterThanOrEqual(Math.floor(before) - 1);
      expect(uptime).toBeLessThanOrEqual(Math.ceil(after) + 1);
    }
  });
});

describe('seed 000 config files take effect (codex-father server --config)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seed000-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fromFile = (content: unknown): Record<string, string> => {
    const file = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(content));
    return envFromConfigFile(file);
  };
  const withHub = async (env: Record<string, string>, run: (t: TestApp) => Promise<void>): Promise<void> => {
    const t = await startTestApp({ AUTH_REQUIRED: 'false', ...env });
    try {
      await run(t);
    } finally {
      await t.close();
    }
  };
  const preflight = (t: TestApp, origin: string): Promise<Response> =>
    fetch(`${t.url}/tasks`, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-custom',
      },
    });

  it('basic config: origin "*" with credentials echoes the origin and allows credentials', async () => {
    const env = fromFile({
      server: { port: 3000, host: 'localhost', enableWebSocket: true, cors: { origin: '*', credentials: true } },
      runner: { maxConcurrency: 10, defaultTimeout: 600000 },
    });
    await withHub({ ...env, PORT: '0', HOST: '127.0.0.1' }, async (t) => {
      const res = await preflight(t, 'https://app.test');
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.test');
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      const get = await fetch(`${t.url}/healthz`, { headers: { Origin: 'https://app.test' } });
      expect(get.headers.get('access-control-allow-credentials')).toBe('true');
    });
  });

  it('advanced config + security section: methods, allowedHeaders, helmet and compression switches, rate-limit message', async () => {
    const env = fromFile({
      server: {
        cors: {
          origin: ['http://localhost:3000', 'https://myapp.com'],
          methods: ['GET', 'POST', 'PUT', 'DELETE'],
          credentials: true,
        },
        rateLimit: { windowMs: 60000, max: 2, message: '请求过于频繁，请稍后再试' },
        security: { helmet: false, compression: false },
      },
      cors: {
        origin: ['https://trusted-domain.com'],
        methods: ['GET', 'POST'],
        allowedHeaders: ['Content-Type', 'Authorization'],
        credentials: true,
      },
    });
    await withHub(env, async (t) => {
      const res = await preflight(t, 'https://myapp.com');
      expect(res.headers.get('access-control-allow-origin')).toBe('https://myapp.com');
      expect(res.headers.get('access-control-allow-methods')).toBe('GET,POST,PUT,DELETE');
      expect(res.headers.get('access-control-allow-headers')).toBe('Content-Type,Authorization');
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      const docs = await fetch(`${t.url}/docs-json`, { headers: { 'Accept-Encoding': 'gzip' } });
      expect(docs.headers.get('x-content-type-options')).toBeNull();
      expect(docs.headers.get('content-encoding')).toBeNull();
      const codes: number[] = [];
      let last: Json = {};
      for (let i = 0; i < 3; i++) {
        const r = await curl(`${t.url}/tasks`);
        codes.push(r.status);
        last = r.body;
      }
      expect(codes).toEqual([200, 200, 429]);
      expect(last.error).toMatchObject({ code: 'RATE_LIMITED', message: '请求过于频繁，请稍后再试' });
    });
  });

  it('rateLimit.skipSuccessfulRequests / skipFailedRequests (top-level block): skipped answers do not count', async () => {
    await withHub(
      fromFile({ rateLimit: { windowMs: 60000, max: 2, skipSuccessfulRequests: true, skipFailedRequests: false } }),
      async (t) => {
        const codes: number[] = [];
        for (let i = 0; i < 4; i++) codes.push((await fetch(`${t.url}/tasks`)).status);
        for (let i = 0; i < 3; i++) codes.push((await fetch(`${t.url}/tasks/task-404`)).status);
        expect(codes).toEqual([200, 200, 200, 200, 404, 404, 429]);
      },
    );
    await withHub(
      fromFile({ rateLimit: { windowMs: 60000, max: 2, skipSuccessfulRequests: false, skipFailedRequests: true } }),
      async (t) => {
        const codes: number[] = [];
        for (let i = 0; i < 3; i++) codes.push((await fetch(`${t.url}/tasks/task-404`)).status);
        for (let i = 0; i < 3; i++) codes.push((await fetch(`${t.url}/tasks`)).status);
        expect(codes).toEqual([404, 404, 404, 200, 200, 429]);
      },
    );
  });

  it('runner.maxConcurrency caps the tasks devices get at once; a finished one lets the next out', async () => {
    await withHub(fromFile({ runner: { maxConcurrency: 1 } }), async (t) => {
      const devices = [new TestDevice(t.url, t.keys.worker), new TestDevice(t.url, t.keys.worker)];
      try {
        await devices[0].register('cap-a');
        await devices[1].register('cap-b');
        const assigned: { device: number; task: Record<string, unknown> }[] = [];
        devices.forEach(
          (d, i) =>
            void d
              .next('new_task', () => true, 10_000)
              .then(
                (task) => assigned.push({ device: i, task }),
                () => undefined,
              ),
        );
        for (const p of ['one', 'two']) await post(`${t.url}/tasks`, { prompt: p });
        for (let i = 0; i < 100 && assigned.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 300)); // room for a wrong second hand-out
        expect(assigned).toHaveLength(1);
        const first = assigned[0];
        void devices[first.device]
          .next('new_task', () => true, 10_000)
          .then(
            (task) => assigned.push({ device: first.device, task }),
            () => undefined,
          );
        await devices[first.device].request('task_result', {
          task_id: first.task.task_id,
          result: { success: true, output: 'done' },
        });
        for (let i = 0; i < 150 && assigned.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
        expect(assigned).toHaveLength(2);
        expect(assigned[1].task.task_id).not.toBe(first.task.task_id);
      } finally {
        devices.forEach((d) => d.close());
      }
    });
  });

  it('runner.maxConcurrency caps the tasks out at once (pull workers)', async () => {
    await withHub(fromFile({ runner: { maxConcurrency: 1 } }), async (t) => {
      const w = apiClient(t, t.keys.worker);
      for (const p of ['one', 'two']) await post(`${t.url}/tasks`, { prompt: p });
      const first = await w.get<{ task_id: string } | null>('/api/v1/tasks/next?worker_id=a');
      expect(first.body.data).not.toBeNull();
      const second = await w.get<{ task_id: string } | null>('/api/v1/tasks/next?worker_id=b');
      expect(second.body.data).toBeNull();
      const done = await w.post(`/api/v1/tasks/${first.body.data?.task_id ?? ''}/complete`, {
        worker_id: 'a',
        result: { status: 'success', output: 'ok' },
      });
      expect(done.status).toBe(200);
      const third = await w.get<{ task_id: string } | null>('/api/v1/tasks/next?worker_id=b');
      expect(third.body.data).not.toBeNull();
    });
  });
});
