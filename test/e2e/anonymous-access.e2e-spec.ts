import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Issue 22, item 4: what a caller without an API key can learn (docs/security.md). Liveness,
 * readiness, versions, the docs and the dashboard shell stay open and name no tenant and count
 * no task; /metrics needs a key or the scrape token (METRICS_TOKEN); /status, /healthz, /health
 * and seed 004's `GET /` keep their shape and fill in their counts only for a key.
 */

const METRICS_TOKEN = 'scrape-0123456789abcdef';
const TENANT_A = 'anon-acme';
const TENANT_B = 'anon-globex';
const NAME_A = 'Acme Hidden Works';
const NAME_B = 'Globex Hidden Labs';
const SECRETS = [TENANT_A, TENANT_B, NAME_A, NAME_B];

const PROM = { Accept: 'text/plain;version=0.0.4' };
const bearer = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });

interface Answer {
  status: number;
  type: string;
  text: string;
  json: Record<string, unknown>;
}

/** Names no tenant (id or name) anywhere in the body. */
const expectNoTenant = (a: Answer): void => {
  for (const s of SECRETS)
    expect({ body: a.text, names: s, found: a.text.includes(s) }).toMatchObject({ found: false });
};

/** `name{labels} value` lines of a Prometheus text body. */
const series = (text: string, name: string): Map<string, number> =>
  new Map(
    [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => [m[1] ?? '', Number(m[2])]),
  );

describe('what an anonymous caller can learn (auth on, METRICS_TOKEN set)', () => {
  let t: TestApp;
  let a: { api: Api; key: string };
  let b: { api: Api; key: string };

  const get = async (path: string, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${t.url}${path}`, { headers });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, text, json: type.includes('json') ? JSON.parse(text) : {} };
  };

  beforeAll(async () => {
    t = await startTestApp({ METRICS_TOKEN });
    const global = apiClient(t, t.keys.admin);
    const keyIn = async (tenant: string, name: string): Promise<{ api: Api; key: string }> => {
      expect((await global.post('/api/v1/tenants', { id: tenant, name })).status).toBe(201);
      const made = await global.post<{ key: string }>('/api/v1/api-keys', {
        name: `${tenant}-client`,
        roles: ['client'],
        tenant_id: tenant,
      });
      expect(made.status).toBe(201);
      return { api: apiClient(t, made.body.data.key), key: made.body.data.key };
    };
    [a, b] = await Promise.all([keyIn(TENANT_A, NAME_A), keyIn(TENANT_B, NAME_B)]);
    for (let i = 0; i < 2; i++) expect((await a.api.post('/api/v1/tasks', { prompt: `a${i}` })).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await b.api.post('/api/v1/tasks', { prompt: `b${i}` })).status).toBe(201);
  });
  afterAll(() => t.close());

  describe('/metrics needs a key or the scrape token', () => {
    it.each([
      ['Prometheus text (Accept: text/plain)', '/metrics', PROM],
      ['Prometheus text (OpenMetrics)', '/metrics', { Accept: 'application/openmetrics-text;version=1.0.0' }],
      ['Prometheus text (?format=prometheus)', '/metrics?format=prometheus', {}],
      ['the Codex JSON document (no Accept)', '/metrics', {}],
      ['the Codex JSON document (Accept: application/json)', '/metrics', { Accept: 'application/json' }],
    ])('anonymous %s: 401 UNAUTHORIZED, naming no tenant', async (_what, path, headers) => {
      const res = await get(path, headers);
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({
        success: false,
        error: { code: 'UNAUTHORIZED', message: expect.stringContaining('METRICS_TOKEN') },
      });
      expect(res.text).not.toContain('taskhub_');
      expectNoTenant(res);
    });

    it('a bad key, a wrong token of the same length, or the token in another scheme: 401', async () => {
      const wrong = `${METRICS_TOKEN.slice(0, -1)}x`;
      for (const headers of [
        bearer('th_not-a-real-key'),
        bearer(wrong),
        { Authorization: `Basic ${METRICS_TOKEN}` },
        { Authorization: METRICS_TOKEN },
      ]) {
        const res = await get('/metrics', { ...PROM, ...headers });
        expect({ headers, status: res.status }).toEqual({ headers, status: 401 });
        expectNoTenant(res);
      }
    });

    it('Bearer METRICS_TOKEN: 200 Prometheus text of the whole hub, every tenant series summing to the totals', async () => {
      const res = await get('/metrics', { ...PROM, ...bearer(METRICS_TOKEN) });
      expect(res.status).toBe(200);
      expect(res.type).toContain('text/plain');
      expect(res.text).toMatch(/^taskhub_tasks_submitted_total \d+$/m);
      const tenantTasks = series(res.text, 'taskhub_tenant_tasks');
      expect(tenantTasks.get(`{tenant="${TENANT_A}",status="pending"}`)).toBe(2);
      expect(tenantTasks.get(`{tenant="${TENANT_B}",status="pending"}`)).toBe(3);
      const totals = series(res.text, 'taskhub_tasks');
      const sum = [...tenantTasks].filter(([k]) => k.includes('status="pending"')).reduce((s, [, n]) => s + n, 0);
      expect(totals.get('{status="pending"}')).toBe(sum);
      expect(totals.get('{status="pending"}')).toBeGreaterThanOrEqual(5);
      // ?format=prometheus and the JSON document take the token too (the whole hub's counts).
      expect((await get('/metrics?format=prometheus', bearer(METRICS_TOKEN))).status).toBe(200);
      const json = await get('/metrics', bearer(METRICS_TOKEN));
      expect(json.status).toBe(200);
      expect(json.json).toMatchObject({ success: true, data: { tasks: { pending: 5 } } });
    });

    it('the scrape token opens /metrics only: every other route refuses it as an unknown key', async () => {
      for (const path of ['/api/v1/tasks', '/api/v1/statistics', '/tasks', '/v1/config']) {
        const res = await get(path, bearer(METRICS_TOKEN));
        expect({ path, status: res.status }).toEqual({ path, status: 401 });
      }
      // An open route takes it as no key at all: no counts.
      expect((await get('/status', bearer(METRICS_TOKEN))).json).toMatchObject({ data: { tasks: null, nodes: null } });
    });

    it('a global admin key: 200 as before, every tenant series and the Codex JSON of the whole hub', async () => {
      const text = await get('/metrics', { ...PROM, ...bearer(t.keys.admin) });
      expect(text.status).toBe(200);
      const tenantTasks = series(text.text, 'taskhub_tenant_tasks');
      expect(tenantTasks.get(`{tenant="${TENANT_A}",status="pending"}`)).toBe(2);
      expect(tenantTasks.get(`{tenant="${TENANT_B}",status="pending"}`)).toBe(3);
      const json = await get('/metrics', bearer(t.keys.admin));
      expect(json.status).toBe(200);
      expect(json.json).toMatchObject({
        success: true,
        data: {
          tasks: { total: 5, pending: 5 },
          performance: { avgExecutionTime: expect.any(Number), successRate: expect.any(Number) },
          system: { memory: expect.stringMatching(/MB$/), cpu: expect.stringMatching(/%$/) },
        },
        requestId: expect.any(String),
      });
    });

    it("a tenant key: only its own tenant's series, totals that are its own, and its own JSON counts", async () => {
      const res = await get('/metrics', { ...PROM, ...bearer(a.key) });
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(TENANT_B);
      expect(res.text).not.toContain(NAME_B);
      const tenantTasks = series(res.text, 'taskhub_tenant_tasks');
      expect([...tenantTasks.keys()].every((k) => k.startsWith(`{tenant="${TENANT_A}",`))).toBe(true);
      expect(tenantTasks.get(`{tenant="${TENANT_A}",status="pending"}`)).toBe(2);
      expect(series(res.text, 'taskhub_tasks').get('{status="pending"}')).toBe(2);
      expect([...series(res.text, 'taskhub_tenant_nodes_connected').keys()]).toEqual([`{tenant="${TENANT_A}"}`]);
      // The process series are there as for anyone with access.
      expect(res.text).toMatch(/^process_cpu_seconds_total \S+$/m);

      const json = await get('/metrics', bearer(b.key));
      expect(json.json).toMatchObject({ success: true, data: { tasks: { total: 3, pending: 3 } } });
      // A worker key of the default tenant (no tasks there) may read them too.
      const worker = await get('/metrics', { ...PROM, ...bearer(t.keys.worker) });
      expect(worker.status).toBe(200);
      expectNoTenant(worker);
    });
  });

  describe('liveness, readiness and versions stay open, without counts or tenant names', () => {
    it('/healthz: status, version, uptime and process numbers; tasks null without a key, counted with one', async () => {
      const anon = await get('/healthz');
      expect(anon.status).toBe(200);
      expect(anon.json).toEqual({
        status: 'healthy',
        version: expect.any(String),
        uptime: expect.any(Number),
        tasks: null,
        system: { memory: expect.stringMatching(/MB$/), cpu: expect.stringMatching(/%$/) },
      });
      expectNoTenant(anon);
      expect((await get('/healthz', bearer('th_not-a-real-key'))).json).toMatchObject({ tasks: null });
      expect((await get('/healthz', bearer(a.key))).json).toMatchObject({ tasks: { total: 2, pending: 2 } });
      expect((await get('/healthz', bearer(t.keys.admin))).json).toMatchObject({ tasks: { total: 5, pending: 5 } });
    });

    it('/health: components and process numbers for anyone; queue_size null without a key', async () => {
      const anon = await get('/health');
      expect(anon.status).toBe(200);
      expect(anon.json).toMatchObject({
        status: 'healthy',
        version: expect.any(String),
        components: { database: { healthy: true, response_time: expect.any(Number) } },
        metrics: { queue_size: null, active_connections: expect.any(Number), rss_bytes: expect.any(Number) },
      });
      expectNoTenant(anon);
      expect((await get('/health', bearer(b.key))).json).toMatchObject({ metrics: { queue_size: 3 } });
      expect((await get('/health', bearer(t.keys.admin))).json).toMatchObject({ metrics: { queue_size: 5 } });
    });

    it('/status: the same fields for anyone (status, version, uptime); tasks and nodes only for a key', async () => {
      const anon = await get('/status');
      expect(anon.status).toBe(200);
      expect(anon.json).toEqual({
        success: true,
        data: {
          status: 'running',
          version: expect.any(String),
          uptime: expect.any(Number),
          tasks: null,
          nodes: null,
          timestamp: expect.any(String),
        },
        timestamp: expect.any(String),
        requestId: expect.any(String),
      });
      expectNoTenant(anon);
      expect((await get('/status', bearer('th_not-a-real-key'))).json).toMatchObject({ data: { tasks: null } });
      // With a key: exactly the shape of before, counted for the key's tenant.
      const keyed = await get('/status', bearer(a.key));
      expect(keyed.json).toMatchObject({
        success: true,
        data: {
          status: 'running',
          tasks: { total: 2, pending: 2, running: 0, completed: 0, failed: 0, cancelled: 0 },
          nodes: { online: 0, total: 0 },
        },
      });
      expect((await get('/status', bearer(t.keys.admin))).json).toMatchObject({ data: { tasks: { total: 5 } } });
    });

    it('seed 004 GET /: the banner for anyone; connected_devices and active_tasks only for a key', async () => {
      const anon = await get('/');
      expect(anon.status).toBe(200);
      expect(anon.json).toMatchObject({
        system: '分布式任务系统',
        implementation: 'taskhub',
        status: 'running',
        version: expect.any(String),
        connected_devices: null,
        active_tasks: null,
      });
      expectNoTenant(anon);
      expect((await get('/', bearer(b.key))).json).toMatchObject({ connected_devices: 0, active_tasks: 3 });
    });

    it('the API docs and the dashboard shell are open and hold no tenant data', async () => {
      const docs = await get('/docs-json');
      expect(docs.status).toBe(200);
      expectNoTenant(docs);
      const ui = await get('/docs/');
      expect(ui.status).toBe(200);
      const dashboard = await get('/dashboard');
      expect([200, 503]).toContain(dashboard.status); // 503: the page is not built in this checkout
      expectNoTenant(dashboard);
    });

    it('everything else answers 401 UNAUTHORIZED without a key', async () => {
      for (const path of ['/api/v1/statistics', '/api/v1/tasks', '/api/v1/nodes', '/api/devices', '/tasks']) {
        const res = await get(path);
        expect({ path, status: res.status }).toEqual({ path, status: 401 });
        expectNoTenant(res);
      }
    });
  });
});

describe('with AUTH_REQUIRED=false everything stays open as before', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ AUTH_REQUIRED: 'false' });
    const anon = apiClient(t, undefined);
    expect((await anon.post('/api/v1/tenants', { id: TENANT_A, name: NAME_A })).status).toBe(201);
    expect((await anon.post('/api/v1/tasks', { prompt: 'open' }, { 'X-Tenant-Id': TENANT_A })).status).toBe(201);
  });
  afterAll(() => t.close());

  it('/metrics (text and JSON), /status, /healthz, /health and GET / count the whole hub for anyone', async () => {
    const text = await (await fetch(`${t.url}/metrics`, { headers: PROM })).text();
    expect(series(text, 'taskhub_tenant_tasks').get(`{tenant="${TENANT_A}",status="pending"}`)).toBe(1);
    const json = async (path: string): Promise<Record<string, unknown>> =>
      (await (await fetch(`${t.url}${path}`)).json()) as Record<string, unknown>;
    expect(await json('/metrics')).toMatchObject({ success: true, data: { tasks: { total: 1 } } });
    expect(await json('/status')).toMatchObject({ data: { tasks: { total: 1 }, nodes: { online: 0 } } });
    expect(await json('/healthz')).toMatchObject({ tasks: { total: 1 } });
    expect(await json('/health')).toMatchObject({ metrics: { queue_size: 1 } });
    expect(await json('/')).toMatchObject({ connected_devices: 0, active_tasks: 1 });
  });
});
