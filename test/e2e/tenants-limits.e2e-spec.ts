import { ServiceStatsService } from '../../src/modules/agent-services/service-stats.service.js';
import { LlmUsageRecorder } from '../../src/modules/llm/llm-accounting.js';
import type { PgUsageRecorder } from '../../src/modules/llm/accounting/pg-usage-recorder.js';
import { type Api, apiClient } from '../support/api.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const TENANTS = '/api/v1/tenants';
const TASKS = '/api/v1/tasks';

interface BatchView {
  created: number;
  failed: number;
  results: { index: number; success: boolean; error?: { code: string; details: Record<string, unknown> } }[];
}

interface PatchBody {
  data: { id: string; limits: Record<string, number> };
  error: { code: string; details: { field?: string } };
}

/**
 * Per-tenant limits (rate limit, max_tasks, LLM budget), PATCH of limits, and statistics and
 * metrics per tenant (docs/tenants.md). With REDIS_URL set the rate limits run on the Redis
 * store as well as in memory.
 */
describe.each([
  ['memory', undefined],
  ['redis', process.env.REDIS_URL],
])('tenant limits and per-tenant statistics (%s rate-limit store)', (store, redisUrl) => {
  const skip = store === 'redis' && !redisUrl;
  (skip ? describe.skip : describe)(skip ? 'needs REDIS_URL' : 'on this store', () => {
    let t: TestApp;
    let global: Api;
    let provider: FakeProvider;
    let recorder: PgUsageRecorder;
    /** Tenants of this run: the Redis store outlives the app, so its buckets need fresh names. */
    const run = `${store}-${Date.now().toString(36)}`;
    const tid = (name: string): string => `${name}-${run}`;

    const makeTenant = async (name: string, limits: Record<string, number> = {}): Promise<string> => {
      const res = await global.post(TENANTS, { id: tid(name), name: tid(name), limits });
      expect(res.status).toBe(201);
      return tid(name);
    };
    const keyIn = async (tenant: string | null, roles: string[]): Promise<{ api: Api; id: string; key: string }> => {
      const res = await global.post<{ key: string; id: string }>('/api/v1/api-keys', {
        name: `${tenant ?? 'global'}-${roles[0]}`,
        roles,
        tenant_id: tenant,
      });
      expect(res.status).toBe(201);
      return { api: apiClient(t, res.body.data.key), id: res.body.data.id, key: res.body.data.key };
    };
    const patch = (key: string, id: string, body: unknown): Promise<{ status: number; body: PatchBody }> =>
      fetch(`${t.url}${TENANTS}/${id}`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as PatchBody }));
    const countTasks = async (tenant: string): Promise<number> =>
      ((await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE tenant_id = $1`, [tenant])) as { n: number }[])[0]
        .n;

    beforeAll(async () => {
      provider = await startFakeProvider({ models: ['fake-model'] });
      t = await startTestApp({
        LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: provider.url, models: ['fake-model'] }]),
        ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      });
      global = apiClient(t, t.keys.admin);
      recorder = t.app.get(LlmUsageRecorder) as PgUsageRecorder;
    });
    afterAll(async () => {
      await t.close();
      await provider.close();
    });

    describe('PATCH /api/v1/tenants/:id', () => {
      it('a global admin replaces the limits; a tenant admin may not; bad limits name the field', async () => {
        const id = await makeTenant('patch', { max_tasks: 5 });
        const res = await patch(t.keys.admin, id, { limits: { rate_limit_per_minute: 100, llm_budget_tokens: 10 } });
        expect(res.status).toBe(200);
        expect(res.body.data).toMatchObject({ id, limits: { rate_limit_per_minute: 100, llm_budget_tokens: 10 } });
        expect(res.body.data.limits.max_tasks).toBeUndefined();
        expect((await global.get<{ limits: unknown }>(`${TENANTS}/${id}`)).body.data.limits).toEqual({
          rate_limit_per_minute: 100,
          llm_budget_tokens: 10,
        });
        const bad = await patch(t.keys.admin, id, { limits: { max_tasks: 0 } });
        expect(bad.status).toBe(400);
        expect(bad.body.error.details.field).toBe('limits.max_tasks');
        expect((await patch(t.keys.admin, id, {})).status).toBe(400);
        expect((await patch(t.keys.admin, 'no-such-tenant', { limits: {} })).status).toBe(404);

        const own = await keyIn(id, ['admin']);
        expect((await patch(own.key, id, { limits: {} })).status).toBe(403);
        expect((await patch(own.key, 'default', { limits: {} })).body.error.code).toBe('TENANT_NOT_FOUND');
        expect((await patch(t.keys.admin, id, { limits: {} })).body.data.limits).toEqual({});
      });
    });

    describe('rate_limit_per_minute', () => {
      it("a limited tenant's keys share one bucket (429 with Retry-After); another tenant and the global admin are not held", async () => {
        const a = await makeTenant('rl-a', { rate_limit_per_minute: 5 });
        const b = await makeTenant('rl-b');
        const [a1, a2, b1] = await Promise.all([keyIn(a, ['client']), keyIn(a, ['client']), keyIn(b, ['client'])]);
        for (const k of [a1, a2, a1, a2, a1]) expect((await k.api.get(TASKS)).status).toBe(200);
        for (const k of [a2, a1]) {
          const refused = await k.api.get(TASKS);
          expect(refused.status).toBe(429);
          expect(refused.body.error).toMatchObject({
            code: 'RATE_LIMITED',
            details: { limit: 'rate_limit_per_minute' },
          });
          expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
          expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
        }
        for (let i = 0; i < 10; i++) expect((await b1.api.get(TASKS)).status).toBe(200);
        expect((await global.get(TASKS, { 'X-Tenant-Id': a })).status).toBe(200);

        // Raised limits apply at once on this hub.
        expect((await patch(t.keys.admin, a, { limits: { rate_limit_per_minute: 1000 } })).status).toBe(200);
        expect((await a1.api.get(TASKS)).status).toBe(200);
      });
    });

    describe('max_tasks', () => {
      it('refuses a submit past the limit with TENANT_LIMIT_EXCEEDED and inserts nothing; a batch counts each item', async () => {
        const m = await makeTenant('mt', { max_tasks: 3 });
        const other = await makeTenant('mt-other', { max_tasks: 1000 });
        const client = (await keyIn(m, ['client'])).api;
        const otherClient = (await keyIn(other, ['client'])).api;
        expect((await client.post(TASKS, { prompt: 'one' })).status).toBe(201);

        const batch = await client.post<BatchView>(`${TASKS}/batch`, {
          tasks: [{ prompt: 'two' }, { prompt: 'three' }, { prompt: 'four' }, { prompt: 'five' }],
        });
        expect(batch.status).toBe(201);
        expect(batch.body.data).toMatchObject({ created: 2, failed: 2 });
        expect(batch.body.data.results.map((r) => r.success)).toEqual([true, true, false, false]);
        expect(batch.body.data.results[3].error).toMatchObject({
          code: 'TENANT_LIMIT_EXCEEDED',
          details: { limit: 'max_tasks', max: 3 },
        });
        expect(await countTasks(m)).toBe(3);

        const refused = await client.post<{ task_id: string }>(TASKS, { prompt: 'six' });
        expect(refused.status).toBe(429);
        expect(refused.body.error).toMatchObject({ code: 'TENANT_LIMIT_EXCEEDED', details: { limit: 'max_tasks' } });
        expect(refused.body.error?.message).toContain('max_tasks');
        expect(await countTasks(m)).toBe(3);
        // A global admin acting for the tenant is held to its limit too (the rows would be the tenant's).
        expect((await global.post(TASKS, { prompt: 'seven' }, { 'X-Tenant-Id': m })).status).toBe(429);
        // Other tenants are not.
        expect((await otherClient.post(TASKS, { prompt: 'elsewhere' })).status).toBe(201);

        // A finished task frees its place.
        const first = (await client.get<{ tasks: { task_id: string }[] }>(`${TASKS}?limit=1`)).body.data.tasks[0];
        expect((await client.post(`${TASKS}/${first.task_id}/cancel`, {})).status).toBe(200);
        expect((await client.post(TASKS, { prompt: 'eight' })).status).toBe(201);
        expect(await countTasks(m)).toBe(4);
      });
    });

    describe('llm_budget_tokens', () => {
      const chat = (key: string, headers: Record<string, string> = {}): Promise<Response> =>
        fetch(`${t.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
          body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hello there' }] }),
        });
      const tokensOf = async (tenant: string): Promise<number> =>
        (
          (await t.db.query(
            `SELECT COALESCE(sum(prompt_tokens + completion_tokens), 0)::int AS n FROM llm_usage WHERE tenant_id = $1`,
            [tenant],
          )) as { n: number }[]
        )[0].n;

      it("refuses a tenant's calls once its tokens of the last 30 days reach the budget, OpenAI-shaped; other tenants go on", async () => {
        const l = await makeTenant('llm', { llm_budget_tokens: 5 });
        const o = await makeTenant('llm-other', { llm_budget_tokens: 1_000_000 });
        const key = await keyIn(l, ['client']);
        const otherKey = await keyIn(o, ['client']);

        const first = await chat(key.key);
        expect(first.status).toBe(200);
        await recorder.flush();
        const used = await tokensOf(l);
        expect(used).toBeGreaterThanOrEqual(5);

        const refused = await chat(key.key);
        expect(refused.status).toBe(429);
        const body = (await refused.json()) as { error: { type: string; code: string; message: string } };
        expect(body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
        expect(body.error.message).toContain(`${used} of 5`);
        // A global admin acting for the tenant spends the tenant's budget, so it is refused too.
        expect((await chat(t.keys.admin, { 'X-Tenant-Id': l })).status).toBe(429);
        expect((await chat(otherKey.key)).status).toBe(200);
        expect((await chat(t.keys.admin)).status).toBe(200);

        // A raised budget lets calls through again.
        expect((await patch(t.keys.admin, l, { limits: { llm_budget_tokens: 1_000_000 } })).status).toBe(200);
        expect((await chat(key.key)).status).toBe(200);
        await recorder.flush();
        expect(await tokensOf(l)).toBeGreaterThan(used);
      });

      it('usage rows land in the tenant each call acted for, also when one flush carries several', async () => {
        const x = await makeTenant('usage-x');
        const y = await makeTenant('usage-y');
        const [kx, ky] = await Promise.all([keyIn(x, ['client']), keyIn(y, ['client'])]);
        const answers = await Promise.all([chat(kx.key), chat(ky.key), chat(t.keys.admin, { 'X-Tenant-Id': y })]);
        expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
        await recorder.flush();
        const rows = (await t.db.query(
          `SELECT tenant_id, count(*)::int AS n FROM llm_usage WHERE tenant_id = ANY($1) GROUP BY tenant_id ORDER BY tenant_id`,
          [[x, y]],
        )) as { tenant_id: string; n: number }[];
        expect(rows).toEqual([
          { tenant_id: x, n: 1 },
          { tenant_id: y, n: 2 },
        ]);
      });

      it('a global key with its own quota keeps one quota row whichever tenant it acts for', async () => {
        const p = await makeTenant('quota-p');
        const q = await makeTenant('quota-q');
        const res = await global.post<{ key: string; id: string }>('/api/v1/api-keys', {
          name: 'global-limited',
          roles: ['admin'],
          tenant_id: null,
          limits: { rpm: 100, budget_tokens: 1_000_000 },
        });
        expect(res.status).toBe(201);
        const { key, id } = res.body.data;
        for (const tenant of [p, q, p]) expect((await chat(key, { 'X-Tenant-Id': tenant })).status).toBe(200);
        expect((await chat(key)).status).toBe(200);
        const rows = (await t.db.query(`SELECT window_requests FROM llm_key_quota WHERE key_id = $1`, [id])) as {
          window_requests: number;
        }[];
        expect(rows).toHaveLength(1);
        // The four calls counted on the one row (a minute boundary in between restarts its window).
        expect(rows[0].window_requests).toBeGreaterThanOrEqual(1);
        expect(rows[0].window_requests).toBeLessThanOrEqual(4);
      });
    });

    describe('statistics and metrics per tenant', () => {
      it('statistics, /status and /metrics (JSON and text) count only the caller tenant; a global scrape keeps totals plus tenant series that sum to them', async () => {
        const a = await makeTenant('st-a');
        const b = await makeTenant('st-b');
        const [ka, kb] = await Promise.all([keyIn(a, ['client']), keyIn(b, ['client'])]);
        for (let i = 0; i < 2; i++) expect((await ka.api.post(TASKS, { prompt: `a${i}` })).status).toBe(201);
        for (let i = 0; i < 3; i++) expect((await kb.api.post(TASKS, { prompt: `b${i}` })).status).toBe(201);
        const cancelId = (await kb.api.get<{ tasks: { task_id: string }[] }>(`${TASKS}?limit=1`)).body.data.tasks[0];
        expect((await kb.api.post(`${TASKS}/${cancelId.task_id}/cancel`, {})).status).toBe(200);

        const stats = async (api: Api) =>
          (await api.get<{ overview: Record<string, number> }>('/api/v1/statistics')).body.data.overview;
        expect(await stats(ka.api)).toMatchObject({ total_tasks: 2, active_tasks: 2 });
        expect(await stats(kb.api)).toMatchObject({ total_tasks: 3, active_tasks: 2 });
        const asA = await stats(apiClient(t, t.keys.admin));
        expect(asA.total_tasks).toBe(Number((await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n));
        expect(
          (await global.get<{ overview: Record<string, number> }>('/api/v1/statistics', { 'X-Tenant-Id': a })).body.data
            .overview,
        ).toMatchObject({ total_tasks: 2 });

        const status = async (key: string) =>
          (
            (await (await fetch(`${t.url}/status`, { headers: { Authorization: `Bearer ${key}` } })).json()) as {
              data: { tasks: Record<string, number> };
            }
          ).data.tasks;
        expect(await status(ka.key)).toMatchObject({ total: 2, pending: 2, cancelled: 0 });
        expect(await status(kb.key)).toMatchObject({ total: 3, pending: 2, cancelled: 1 });

        const metricsJson = async (key: string) =>
          (
            (await (await fetch(`${t.url}/metrics`, { headers: { Authorization: `Bearer ${key}` } })).json()) as {
              data: { tasks: Record<string, number> };
            }
          ).data.tasks;
        expect(await metricsJson(ka.key)).toMatchObject({ total: 2, pending: 2 });
        expect(await metricsJson(kb.key)).toMatchObject({ total: 3, cancelled: 1 });

        // Prometheus text: a global admin (or the scrape token) gets the totals with every
        // tenant's series; a tenant key only its own series, and totals that are its own.
        const prometheus = async (key: string): Promise<string> =>
          (await fetch(`${t.url}/metrics?format=prometheus`, { headers: { Authorization: `Bearer ${key}` } })).text();
        const own = await prometheus(ka.key);
        expect(own).not.toContain(`tenant="${b}"`);
        expect(own).toMatch(new RegExp(`^taskhub_tenant_tasks\\{tenant="${a}",status="pending"\\} 2$`, 'm'));
        expect(own).toMatch(/^taskhub_tasks\{status="pending"\} 2$/m);
        expect(own).toMatch(/^taskhub_tasks\{status="cancelled"\} 0$/m);
        const text = await prometheus(t.keys.admin);
        const value = (re: RegExp): number => Number(re.exec(text)?.[1]);
        expect(value(new RegExp(`^taskhub_tenant_tasks\\{tenant="${a}",status="pending"\\} (\\d+)$`, 'm'))).toBe(2);
        expect(value(new RegExp(`^taskhub_tenant_tasks\\{tenant="${b}",status="pending"\\} (\\d+)$`, 'm'))).toBe(2);
        expect(value(new RegExp(`^taskhub_tenant_tasks\\{tenant="${b}",status="cancelled"\\} (\\d+)$`, 'm'))).toBe(1);
        const dbCounts = (await t.db.query(`SELECT status, count(*)::int AS n FROM tasks GROUP BY status`)) as {
          status: string;
          n: number;
        }[];
        for (const status of ['pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled', 'timed_out']) {
          const total = value(new RegExp(`^taskhub_tasks\\{status="${status}"\\} (\\d+)$`, 'm'));
          let sum = 0;
          for (const m of text.matchAll(
            new RegExp(`^taskhub_tenant_tasks\\{tenant="[^"]+",status="${status}"\\} (\\d+)$`, 'gm'),
          ))
            sum += Number(m[1]);
          expect({ status, total }).toEqual({ status, total: sum });
          expect(total).toBe(dbCounts.find((c) => c.status === status)?.n ?? 0);
        }
        const nodesTotal = value(/^taskhub_nodes_connected (\d+)$/m);
        let nodesSum = 0;
        for (const m of text.matchAll(/^taskhub_tenant_nodes_connected\{tenant="[^"]+"\} (\d+)$/gm))
          nodesSum += Number(m[1]);
        expect(nodesSum).toBe(nodesTotal);
      });

      it('agent-service samples keep a hub-wide row per tenant: /stats/timeseries shows each tenant its own', async () => {
        const a = await makeTenant('svc-a');
        const b = await makeTenant('svc-b');
        const [ka, kb] = await Promise.all([keyIn(a, ['admin']), keyIn(b, ['admin'])]);
        const service = { name: 'agent', endpoint: 'ws://127.0.0.1:9/agent' };
        expect((await ka.api.post('/api/v1/services', service)).status).toBe(201);
        expect((await kb.api.post('/api/v1/services', service)).status).toBe(201);
        await t.app.get(ServiceStatsService).sample();
        const hubRows = (await t.db.query(
          `SELECT tenant_id, count(*)::int AS n FROM service_stat_samples
           WHERE service_id IS NULL AND tenant_id = ANY($1) GROUP BY tenant_id ORDER BY tenant_id`,
          [[a, b]],
        )) as { tenant_id: string; n: number }[];
        expect(hubRows).toEqual([
          { tenant_id: a, n: 1 },
          { tenant_id: b, n: 1 },
        ]);
        const series = await ka.api.get<{ data: { value: number | null }[] }>(
          '/api/v1/stats/timeseries?metric=connections&period=1h&interval=1h',
        );
        expect(series.status).toBe(200);
        const points = (series.body as unknown as { data: { value: number | null }[] }).data;
        expect(points.length).toBeGreaterThan(0);
        const overview = await ka.api.get('/api/v1/stats/overview');
        expect((overview.body as unknown as { services: { total: number } }).services.total).toBe(1);
      });
    });
  });
});
