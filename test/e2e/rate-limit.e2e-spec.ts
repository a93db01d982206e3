import { Redis } from 'ioredis';
import { type Api, type ApiResponse, apiClient } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const TASKS = '/api/v1/tasks';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The answer's rate-limit headers (fetch lower-cases names). */
const limitHeaders = (res: ApiResponse): Record<string, string> =>
  Object.fromEntries(
    [...res.headers.entries()].filter(
      ([name]) => name.startsWith('x-ratelimit') || name.startsWith('ratelimit') || name === 'retry-after',
    ),
  );

/**
 * The HTTP rate limit (docs/configuration.md, rate limits; @nestjs/throttler behind
 * src/modules/rate-limit/): what a client sees on every answer and on a refusal, what the
 * limit counts per, what it leaves alone, and the order of the caller's and its tenant's window.
 * system.e2e-spec.ts, seed000-conformance.e2e-spec.ts, tenants-limits.e2e-spec.ts and
 * runtime-config.e2e-spec.ts pin the rest.
 */
describe('HTTP rate limit', () => {
  describe('one hub', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    });
    afterAll(() => t.close());

    it('counts down in X-RateLimit-Limit / -Remaining, then answers 429 RATE_LIMITED in the envelope with Retry-After', async () => {
      const client = apiClient(t, t.keys.client);
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push(limitHeaders(await client.get(TASKS)));
      expect(seen).toEqual([
        { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2' },
        { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '1' },
        { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0' },
      ]);
      const refused = await client.get(TASKS);
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(59);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(limitHeaders(refused)).toEqual({
        'x-ratelimit-limit': '3',
        'x-ratelimit-remaining': '0',
        'retry-after': String(retryAfter),
      });
      expect(refused.body).toMatchObject({
        success: false,
        data: null,
        error: {
          code: 'RATE_LIMITED',
          message: 'Rate limit of 3 requests per 60s exceeded',
          details: { retry_after_seconds: retryAfter },
        },
      });
      expect(refused.body.error?.details).toEqual({ retry_after_seconds: retryAfter });
      expect(refused.body.request_id).toEqual(expect.any(String));
    });

    it('health, status, metrics and /v1/config are neither limited nor counted', async () => {
      const admin = apiClient(t, t.keys.admin);
      for (let i = 0; i < 5; i++) {
        for (const path of ['/healthz', '/health', '/status', '/metrics', '/v1/config']) {
          const res = await admin.get(path);
          expect([path, res.status]).toEqual([path, 200]);
          expect(limitHeaders(res)).toEqual({});
        }
      }
      expect(limitHeaders(await admin.get(TASKS))).toEqual({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2' });
    });

    it('RATE_LIMIT_WINDOW_MS is hot: windows opened after the change last the new time', async () => {
      const admin = apiClient(t, t.keys.admin);
      expect((await admin.patch('/v1/config', { RATE_LIMIT_WINDOW_MS: 500 })).status).toBe(200);
      try {
        const worker = apiClient(t, t.keys.worker); // no window open yet
        const codes = [];
        for (let i = 0; i < 4; i++) codes.push((await worker.get(TASKS)).status);
        expect(codes).toEqual([200, 200, 200, 429]);
        await sleep(600);
        expect((await worker.get(TASKS)).status).toBe(200);
      } finally {
        expect((await admin.delete('/v1/config/RATE_LIMIT_WINDOW_MS')).status).toBe(200);
      }
    });
  });

  it('without a key, per client address; a key has its own budget', async () => {
    const t = await startTestApp({ AUTH_REQUIRED: 'false', RATE_LIMIT_MAX: '2' });
    try {
      const anonymous = apiClient(t, undefined);
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await anonymous.get(TASKS)).status);
      expect(codes).toEqual([200, 200, 429]);
      expect((await apiClient(t, 'some-key-of-its-own').get(TASKS)).status).toBe(200);
      expect((await anonymous.get(TASKS)).status).toBe(429);
    } finally {
      await t.close();
    }
  });

  it("checks the caller's window before its tenant's: a request its own limit refuses spends none of the tenant's budget", async () => {
    const t = await startTestApp({ RATE_LIMIT_MAX: '3' });
    try {
      const global = apiClient(t, t.keys.admin);
      expect(
        (
          await global.post('/api/v1/tenants', {
            id: 'rl-order',
            name: 'rl-order',
            limits: { rate_limit_per_minute: 5 },
          })
        ).status,
      ).toBe(201);
      const keyIn = async (): Promise<Api> => {
        const res = await global.post<{ key: string }>('/api/v1/api-keys', {
          name: 'k',
          roles: ['client'],
          tenant_id: 'rl-order',
        });
        expect(res.status).toBe(201);
        return apiClient(t, res.body.data.key);
      };
      const [k1, k2] = [await keyIn(), await keyIn()];
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push((await k1.get(TASKS)).status);
      expect(codes).toEqual([200, 200, 200, 429, 429]); // k1's own window: the tenant has counted 3
      expect((await k1.get(TASKS)).body.error?.details).not.toHaveProperty('limit');
      for (let i = 0; i < 2; i++) expect((await k2.get(TASKS)).status).toBe(200); // the tenant's 4th and 5th
      const refused = await k2.get(TASKS);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({
        code: 'RATE_LIMITED',
        message: 'Tenant rate limit of 5 requests per minute exceeded',
        details: { limit: 'rate_limit_per_minute', retry_after_seconds: Number(refused.headers.get('retry-after')) },
      });
      // k2's own window let it through (its 3rd of 3), so its headers are there too.
      expect(limitHeaders(refused)).toMatchObject({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0' });
    } finally {
      await t.close();
    }
  });

  const redisUrl = process.env.REDIS_URL;
  (redisUrl ? describe : describe.skip)('with REDIS_URL (needs it)', () => {
    it('hubs sharing Redis share one budget per key, counted atomically in a window that expires', async () => {
      const env = { AUTH_REQUIRED: 'false', RATE_LIMIT_MAX: '4', REDIS_URL: redisUrl as string };
      const a = await startTestApp(env);
      const b = await startTestApp(env, { keepData: true });
      const redis = new Redis(redisUrl as string);
      try {
        const token = `shared-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
        const [onA, onB] = [apiClient(a, token), apiClient(b, token)];
        // Four at once across both hubs: each counted once, none lost.
        const first = await Promise.all([onA.get(TASKS), onB.get(TASKS), onA.get(TASKS), onB.get(TASKS)]);
        expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200]);
        expect(first.map((r) => r.headers.get('x-ratelimit-remaining')).sort()).toEqual(['0', '1', '2', '3']);
        expect((await onB.get(TASKS)).status).toBe(429);
        expect((await onA.get(TASKS)).status).toBe(429);
        const keys = await redis.keys('taskhub:rl:key:*');
        const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
        expect(ttls.every((ms) => ms > 0 && ms <= 60_000)).toBe(true);
      } finally {
        redis.disconnect();
        await b.close();
        await a.close();
      }
    });
  });
});
