import http from 'node:http';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, type Api } from '../support/api.js';
import { HubProcess } from '../support/hub-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const PROM_LINE = /^[a-zA-Z_:][\w:]*(\{[^}]*\})? (-?[\d.]+(e[-+]?\d+)?|NaN|[+-]Inf)$/;

function parseProm(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    expect(line).toMatch(PROM_LINE);
    const i = line.lastIndexOf(' ');
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

describe('system endpoints: /healthz, /status, /metrics', () => {
  let t: TestApp;
  let client: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
  });
  afterAll(() => t.close());

  const scrape = (): Promise<Response> =>
    fetch(`${t.url}/metrics`, {
      headers: { Accept: 'text/plain;version=0.0.4', Authorization: `Bearer ${t.keys.admin}` },
    });

  it('Prometheus output parses and its counts move with the work', async () => {
    const before = parseProm(await (await scrape()).text());
    for (let i = 0; i < 3; i++) await client.post('/api/v1/tasks', { prompt: `m${i}` });
    const res = await scrape();
    expect(res.headers.get('content-type')).toContain('text/plain');
    const after = parseProm(await res.text());
    const submitted = (m: Map<string, number>): number => m.get('taskhub_tasks_submitted_total') ?? 0;
    expect(submitted(after) - submitted(before)).toBe(3);
    expect(after.get('taskhub_tasks{status="pending"}')).toBe(3);
    expect(after.get('taskhub_nodes_connected')).toBe(0);
    expect(
      [...after.keys()].some((k) =>
        k.startsWith('taskhub_http_request_duration_seconds_count{method="POST",route="/api/v1/tasks",status="201"}'),
      ),
    ).toBe(true);
    expect([...after.keys()].some((k) => k.startsWith('nodejs_eventloop_lag_seconds'))).toBe(true);
    expect([...after.keys()].some((k) => k.startsWith('process_cpu_seconds_total'))).toBe(true);
  });

  it('answers the Codex JSON metrics document for Accept: application/json', async () => {
    const res = await fetch(`${t.url}/metrics`, {
      headers: { Accept: 'application/json', Authorization: `Bearer ${t.keys.client}` },
    });
    const { success, data } = (await res.json()) as {
      success: boolean;
      data: { tasks: Record<string, number>; performance: Record<string, number>; system: Record<string, unknown> };
    };
    expect(success).toBe(true);
    expect(data.tasks.pending).toBeGreaterThanOrEqual(3);
    expect(data.performance).toMatchObject({
      successRate: expect.any(Number),
      avgExecutionTime: expect.any(Number),
      throughput: expect.any(Number),
    });
    expect(data.system).toMatchObject({
      uptime: expect.any(Number),
      memory: expect.stringMatching(/MB$/),
      cpu: expect.stringMatching(/%$/),
    });
  });

  it('/healthz (Codex shape) and /status need no key; their counts need one (docs/security.md)', async () => {
    const json = async (path: string, key?: string): Promise<Record<string, unknown>> =>
      (await (
        await fetch(`${t.url}${path}`, { headers: key ? { Authorization: `Bearer ${key}` } : {} })
      ).json()) as Record<string, unknown>;
    const system = { memory: expect.stringMatching(/MB$/), cpu: expect.stringMatching(/%$/) };
    expect(await json('/healthz')).toMatchObject({ status: 'healthy', tasks: null, system });
    expect(await json('/healthz', t.keys.client)).toMatchObject({
      status: 'healthy',
      tasks: { pending: expect.any(Number), running: 0, completed: 0 },
      system,
    });
    expect(await json('/status')).toMatchObject({ success: true, data: { status: 'running', tasks: null } });
    expect(await json('/status', t.keys.client)).toMatchObject({
      success: true,
      data: { status: 'running', tasks: { pending: expect.any(Number) } },
    });
  });

  it('/metrics without a key: 401 UNAUTHORIZED in the envelope, as POST /shutdown', async () => {
    const accepts: Record<string, string>[] = [
      { Accept: 'text/plain;version=0.0.4' },
      { Accept: 'application/json' },
      {},
    ];
    for (const headers of accepts) {
      const res = await fetch(`${t.url}/metrics`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ success: false, error: { code: 'UNAUTHORIZED' } });
    }
  });

  it('POST /shutdown is for admins only', async () => {
    const res = await client.post('/shutdown');
    expect(res.status).toBe(403);
    expect((await fetch(`${t.url}/shutdown`, { method: 'POST' })).status).toBe(401);
    expect((await client.get('/api/v1/tasks')).status).toBe(200); // still serving
  });

  it('sends security headers and compresses large answers', async () => {
    const res = await fetch(`${t.url}/docs-json`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-encoding')).toBe('gzip');
  });

  it('leaves the compression middleware out for a request that accepts no encoding (no Vary on its answer)', async () => {
    // fetch always sends Accept-Encoding: node:http sends only what it is given.
    const answer = await new Promise<{
      status: number;
      vary: string | undefined;
      encoding: string | undefined;
      body: string;
    }>((resolve, reject) => {
      http
        .get(`${t.url}/docs-json`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              vary: res.headers.vary,
              encoding: res.headers['content-encoding'],
              body,
            }),
          );
        })
        .on('error', reject);
    });
    expect(answer.status).toBe(200);
    expect(answer.encoding).toBeUndefined();
    expect(answer.vary ?? '').not.toMatch(/accept-encoding/i);
    expect(JSON.parse(answer.body)).toHaveProperty('openapi');
    // The same document to a client that accepts gzip: compressed, and said to vary by it.
    const gz = await fetch(`${t.url}/docs-json`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gz.headers.get('vary')).toMatch(/accept-encoding/i);
  });

  it('sends a small answer (a task, under COMPRESSION_MIN_BYTES) uncompressed, with its length', async () => {
    const submitted = await fetch(`${t.url}/api/v1/tasks`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.keys.client}`,
        'content-type': 'application/json',
        'accept-encoding': 'gzip',
      },
      body: JSON.stringify({ prompt: 'x'.repeat(1500) }),
    });
    expect(submitted.status).toBe(201);
    const length = Number(submitted.headers.get('content-length'));
    expect(length).toBeGreaterThan(1024); // above compression's own default threshold (1 KB)
    expect(length).toBeLessThan(8192);
    expect(submitted.headers.get('content-encoding')).toBeNull();
    expect(((await submitted.json()) as { data: { prompt: string } }).data.prompt).toBe('x'.repeat(1500));
  });
});

describe('rate limiting', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the limit, per key, then recovers', async () => {
    const t = await startTestApp({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '1000' });
    try {
      const client = apiClient(t, t.keys.client);
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await client.get('/api/v1/tasks')).status);
      expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const limited = await client.get('/api/v1/tasks');
      expect(limited.body.error).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Another key has its own budget; health is never limited.
      expect((await apiClient(t, t.keys.worker).get('/api/v1/tasks')).status).toBe(200);
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1100)); // the window is time itself
      expect((await client.get('/api/v1/tasks')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

const canSpawn = HubProcess.canRun();
if (!canSpawn) process.stdout.write('\n[shutdown] skipped: dist/src/main.js is missing (run npm run build)\n');

(canSpawn ? describe : describe.skip)('POST /shutdown on a real hub process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-shutdown-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drains an in-flight request, refuses new ones with 503, and exits 0', async () => {
    const hub = await new HubProcess({ AUTH_REQUIRED: 'false', DATA_DIR: dir, DATABASE_URL: '' }).start();
    const url = new URL(hub.url);
    // An in-flight request: the body arrives in two parts, with the shutdown in between.
    const body = JSON.stringify({ prompt: 'in flight during shutdown' });
    const inFlight = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: '/api/v1/tasks',
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 1500);
    });
    await new Promise((r) => setTimeout(r, 200));
    const shutdown = await fetch(`${hub.url}/shutdown`, { method: 'POST' });
    expect(shutdown.status).toBe(202);
    await new Promise((r) => setTimeout(r, 100));
    const refused = await fetch(`${hub.url}/api/v1/tasks`);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(await inFlight).toBe(201);
    expect(await hub.exited()).toBe(0);
  }, 60_000);
});
