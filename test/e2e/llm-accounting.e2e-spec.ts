import { randomUUID } from 'node:crypto';
import {
  LlmQuotaGate,
  LlmUsageRecorder,
  type LlmCaller,
  type LlmUsageRecord,
} from '../../src/modules/llm/llm-accounting.js';
import { LlmError } from '../../src/modules/llm/llm-error.js';
import { PgUsageRecorder } from '../../src/modules/llm/accounting/pg-usage-recorder.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface KeyView {
  id: string;
  key: string;
  limits: Record<string, unknown> | null;
}

describe('LLM accounting: key limits, quotas, usage', () => {
  let t: TestApp;
  let admin: Api;
  let gate: LlmQuotaGate;
  let recorder: PgUsageRecorder;

  beforeAll(async () => {
    t = await startTestApp();
    admin = apiClient(t, t.keys.admin);
    gate = t.app.get(LlmQuotaGate);
    recorder = t.app.get(LlmUsageRecorder) as PgUsageRecorder;
  });
  afterEach(() => truncate(t.db, 'llm_key_quota, llm_usage'));
  afterAll(() => t.close());

  const createKey = async (limits?: Record<string, unknown> | null): Promise<KeyView> => {
    const res = await admin.post<KeyView>('/api/v1/api-keys', {
      name: `k-${randomUUID().slice(0, 8)}`,
      role: 'client',
      ...(limits === undefined ? {} : { limits }),
    });
    expect(res.status).toBe(201);
    return res.body.data;
  };
  /** Tests that count within one minute window start at least 3 s before it rolls. */
  const awayFromMinuteEdge = async (): Promise<void> => {
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 3000) await new Promise((r) => setTimeout(r, left + 50));
  };
  const caller = (keyId: string | null): LlmCaller => ({ keyId, source: 'http' });
  const reserveError = async (p: Promise<unknown>): Promise<LlmError> => {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(LlmError);
      return e as LlmError;
    }
    throw new Error('reserve did not throw');
  };
  const quotaRow = async (keyId: string) =>
    (
      await t.db.query(
        `SELECT window_requests, window_tokens::int AS window_tokens, budget_tokens::int AS budget_tokens, in_flight FROM llm_key_quota WHERE key_id = $1`,
        [keyId],
      )
    )[0] as
      | { window_requests: number; window_tokens: number; budget_tokens: number; in_flight: Record<string, number> }
      | undefined;

  describe('limits on keys', () => {
    it('creates a key with limits, shows them, PATCH merges and null clears', async () => {
      const k = await createKey({ rpm: 10, tpm: 1000, models: ['gpt-4o'], budget_duration: '1d', budget_tokens: 5000 });
      expect(k.limits).toEqual({ rpm: 10, tpm: 1000, models: ['gpt-4o'], budget_duration: '1d', budget_tokens: 5000 });
      const patch = (body: unknown) =>
        fetch(`${t.url}/api/v1/api-keys/${k.id}/limits`, {
          method: 'PATCH',
          headers: { Authorization: `Bearer ${t.keys.admin}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { data: KeyView; error: { details: { field: string } } },
        }));
      let res = await patch({ rpm: 20, models: null });
      expect(res.status).toBe(200);
      expect(res.body.data.limits).toEqual({ rpm: 20, tpm: 1000, budget_duration: '1d', budget_tokens: 5000 });
      res = await patch({ rpm: null, tpm: null, budget_duration: null, budget_tokens: null });
      expect(res.body.data.limits).toBeNull();
      res = await patch({ max_parallel: 0 });
      expect(res.status).toBe(400);
      expect(res.body.error.details.field).toBe('max_parallel');
      const list = await admin.get<KeyView[]>('/api/v1/api-keys');
      expect(list.body.data.find((x) => x.id === k.id)?.limits).toBeNull();
      expect(list.body.data.find((x) => x.id !== k.id)?.limits).toBeNull();
      expect(
        (
          await fetch(`${t.url}/api/v1/api-keys/${k.id}/limits`, {
            method: 'PATCH',
            headers: { Authorization: `Bearer ${t.keys.client}`, 'Content-Type': 'application/json' },
            body: '{}',
          })
        ).status,
      ).toBe(403);
    });

    it.each([
      [{ rpm: 0 }, 'limits.rpm'],
      [{ rpm: 1.5 }, 'limits.rpm'],
      [{ rpm: '10' }, 'limits.rpm'],
      [{ tpm: -1 }, 'limits.tpm'],
      [{ max_parallel: 0 }, 'limits.max_parallel'],
      [{ budget_tokens: 0 }, 'limits.budget_tokens'],
      [{ budget_duration: '2d' }, 'limits.budget_duration'],
      [{ budget_duration: 0 }, 'limits.budget_duration'],
      [{ models: 'gpt-4o' }, 'limits.models'],
      [{ models: [1] }, 'limits.models'],
      [{ models: Array.from({ length: 101 }, (_, i) => `m${i}`) }, 'limits.models'],
      [{ colour: 'red' }, 'limits.colour'],
    ])('refuses limits %j naming %s', async (limits, field) => {
      const res = await admin.post('/api/v1/api-keys', { name: 'bad', role: 'client', limits });
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('VALIDATION_ERROR');
      expect(res.body.error?.details?.field).toBe(field);
    });
  });

  describe('quota gate', () => {
    it('passes keys without limits (and no key) without touching the database', async () => {
      const k = await createKey();
      for (let i = 0; i < 20; i++)
        await (await gate.reserve(caller(k.id), 'any', 100)).settle({ prompt_tokens: 1, completion_tokens: 1 });
      await (await gate.reserve(caller(null), 'any', 100)).settle(null);
      const models = await createKey({ models: ['a'] });
      await (await gate.reserve(caller(models.id), 'a', 100)).settle(null);
      expect(await t.db.query(`SELECT * FROM llm_key_quota`)).toEqual([]);
      // Cached limits: 200 reserves of an unlimited key well under a millisecond each on average.
      const started = performance.now();
      for (let i = 0; i < 200; i++) await gate.reserve(caller(k.id), 'any', 100);
      expect((performance.now() - started) / 200).toBeLessThan(1);
    });

    it('refuses a model the key may not use with 403 model_not_allowed', async () => {
      const k = await createKey({ models: ['gpt-4o'], rpm: 100 });
      const e = await reserveError(gate.reserve(caller(k.id), 'gpt-3.5', 10));
      expect([e.status, e.type, e.code, e.param]).toEqual([403, 'permission_error', 'model_not_allowed', 'model']);
      await (await gate.reserve(caller(k.id), 'gpt-4o', 10)).settle(null);
    });

    it('rpm 3: the 4th call in the minute is a 429 with retryAfterSeconds', async () => {
      await awayFromMinuteEdge();
      const k = await createKey({ rpm: 3 });
      for (let i = 0; i < 3; i++) await (await gate.reserve(caller(k.id), 'm', 1)).settle(null);
      const e = await reserveError(gate.reserve(caller(k.id), 'm', 1));
      expect([e.status, e.code, e.extra.shouldRetry]).toEqual([429, 'rate_limit_exceeded', true]);
      expect(e.extra.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(e.extra.retryAfterSeconds).toBeLessThanOrEqual(60);
    });

    it('quota race: 20 concurrent reserves of 100 against tpm 1000 → exactly 10', async () => {
      await awayFromMinuteEdge();
      const k = await createKey({ tpm: 1000 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => gate.reserve(caller(k.id), 'm', 100)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as LlmError).status).toBe(429);
      expect((await quotaRow(k.id))?.window_tokens).toBe(1000);
    });

    it('quota race: 20 concurrent reserves against max_parallel 5 → exactly 5, one more after a settle', async () => {
      await awayFromMinuteEdge();
      const k = await createKey({ max_parallel: 5 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => gate.reserve(caller(k.id), 'm', 10)));
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won).toHaveLength(5);
      const refused = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as LlmError;
      expect([refused.status, refused.extra.retryAfterSeconds]).toEqual([429, 1]);
      await reserveError(gate.reserve(caller(k.id), 'm', 10));
      await won[0].settle({ prompt_tokens: 5, completion_tokens: 5 });
      await won[0].settle({ prompt_tokens: 5, completion_tokens: 5 }); // a second settle is a no-op
      const again = await Promise.allSettled(Array.from({ length: 5 }, () => gate.reserve(caller(k.id), 'm', 10)));
      expect(again.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(Object.keys((await quotaRow(k.id))!.in_flight)).toHaveLength(5);
    });

    it('a parallel slot of a call that never settled expires', async () => {
      const k = await createKey({ max_parallel: 1 });
      await gate.reserve(caller(k.id), 'm', 1);
      await reserveError(gate.reserve(caller(k.id), 'm', 1));
      // As if the process that held it died long ago.
      await t.db.query(
        `UPDATE llm_key_quota SET in_flight = (SELECT jsonb_object_agg(key, 0) FROM jsonb_each(in_flight)) WHERE key_id = $1`,
        [k.id],
      );
      await (await gate.reserve(caller(k.id), 'm', 1)).settle(null);
    });

    it('settle replaces the estimate with what was used (null refunds the tokens, keeps the request)', async () => {
      await awayFromMinuteEdge();
      const k = await createKey({ tpm: 10_000, rpm: 100 });
      const r = await gate.reserve(caller(k.id), 'm', 100);
      expect((await quotaRow(k.id))?.window_tokens).toBe(100);
      await r.settle({ prompt_tokens: 20, completion_tokens: 10 });
      expect(await quotaRow(k.id)).toMatchObject({ window_tokens: 30, window_requests: 1, in_flight: {} });
      await (await gate.reserve(caller(k.id), 'm', 100)).settle(null);
      expect(await quotaRow(k.id)).toMatchObject({ window_tokens: 30, window_requests: 2 });
      await (await gate.reserve(caller(k.id), 'm', 100)).settle({ prompt_tokens: 150, completion_tokens: 50 });
      expect((await quotaRow(k.id))?.window_tokens).toBe(230);
    });

    it('an exhausted budget is a 429 insufficient_quota with shouldRetry false', async () => {
      const k = await createKey({ budget_tokens: 250, budget_duration: '1h' });
      await (await gate.reserve(caller(k.id), 'm', 100)).settle({ prompt_tokens: 100, completion_tokens: 100 });
      const e = await reserveError(gate.reserve(caller(k.id), 'm', 100));
      expect([e.status, e.type, e.code, e.extra.shouldRetry]).toEqual([
        429,
        'insufficient_quota',
        'insufficient_quota',
        false,
      ]);
      await (await gate.reserve(caller(k.id), 'm', 50)).settle(null);
      expect((await quotaRow(k.id))?.budget_tokens).toBe(200);
      // The period renews.
      await t.db.query(`UPDATE llm_key_quota SET budget_start = now() - interval '2 hours' WHERE key_id = $1`, [k.id]);
      await (await gate.reserve(caller(k.id), 'm', 200)).settle(null);
    });

    it('a PATCH of limits applies at once on this instance', async () => {
      await awayFromMinuteEdge();
      const k = await createKey({ rpm: 1 });
      await gate.reserve(caller(k.id), 'm', 1);
      await reserveError(gate.reserve(caller(k.id), 'm', 1));
      await fetch(`${t.url}/api/v1/api-keys/${k.id}/limits`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${t.keys.admin}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ rpm: 5 }),
      });
      await gate.reserve(caller(k.id), 'm', 1);
    });
  });

  describe('usage', () => {
    const row = (over: Partial<LlmUsageRecord>): LlmUsageRecord => ({
      request_id: randomUUID(),
      key_id: null,
      node_id: null,
      requested_model: 'fast',
      model: 'gpt-4o-mini',
      provider: 'fake',
      status: 'completed',
      stream: false,
      prompt_tokens: 10,
      completion_tokens: 5,
      ttft_ms: 40,
      duration_ms: 100,
      upstream_status: 200,
      error: null,
      started_at: new Date(),
      ...over,
    });

    it('records rows in batches and rolls them up per minute', async () => {
      const k = await createKey();
      const m0 = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000);
      const m1 = new Date(m0.getTime() + 60_000);
      recorder.record(row({ key_id: k.id, started_at: new Date(m0.getTime() + 1000), duration_ms: 100, ttft_ms: 20 }));
      recorder.record(
        row({
          key_id: k.id,
          started_at: new Date(m0.getTime() + 2000),
          duration_ms: 300,
          ttft_ms: 40,
          prompt_tokens: 7,
          completion_tokens: 3,
        }),
      );
      recorder.record(
        row({
          key_id: k.id,
          started_at: new Date(m1.getTime() + 5000),
          status: 'failed',
          prompt_tokens: 0,
          completion_tokens: 0,
          ttft_ms: null,
          upstream_status: 500,
          error: 'boom',
        }),
      );
      recorder.record(row({ key_id: null, started_at: new Date(m1.getTime() + 5000), model: 'other' }));
      expect(() => recorder.record(row({ request_id: 'x', ttft_ms: 12.7 }))).not.toThrow();
      await recorder.flush();
      expect((await t.db.query(`SELECT count(*)::int AS n FROM llm_usage`))[0].n).toBe(5);

      const range = `since=${m0.toISOString()}&until=${new Date(m1.getTime() + 60_000).toISOString()}`;
      const q = `${range}&interval=minute`;
      const res = await admin.get<{ rows: Record<string, unknown>[]; totals: Record<string, number> }>(
        `/api/v1/llm/usage?${q}&key_id=${k.id}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.data.rows).toEqual([
        {
          bucket: m0.toISOString(),
          key_id: k.id,
          model: 'gpt-4o-mini',
          calls: 2,
          errors: 0,
          prompt_tokens: 17,
          completion_tokens: 8,
          avg_ttft_ms: 30,
          avg_duration_ms: 200,
          p50_duration_ms: 200,
        },
        {
          bucket: m1.toISOString(),
          key_id: k.id,
          model: 'gpt-4o-mini',
          calls: 1,
          errors: 1,
          prompt_tokens: 0,
          completion_tokens: 0,
          avg_ttft_ms: null,
          avg_duration_ms: 100,
          p50_duration_ms: 100,
        },
      ]);
      expect(res.body.data.totals).toEqual({ calls: 3, errors: 1, prompt_tokens: 17, completion_tokens: 8 });
      const all = await admin.get<{ rows: unknown[] }>(`/api/v1/llm/usage?${q}&model=fast`);
      expect(all.body.data.rows).toHaveLength(3);
      const hourly = await admin.get<{ totals: Record<string, number> }>(`/api/v1/llm/usage?${range}&interval=hour`);
      expect(hourly.body.data.totals.calls).toBe(4);

      // A non-admin key sees only its own usage.
      const mine = await apiClient(t, k.key).get<{ totals: Record<string, number> }>(`/api/v1/llm/usage?${q}`);
      expect(mine.body.data.totals.calls).toBe(3);
      expect((await apiClient(t, t.keys.client).get(`/api/v1/llm/usage?${q}&key_id=${k.id}`)).status).toBe(403);
    });

    it.each([
      ['interval=week', 'interval'],
      ['key_id=nope', 'key_id'],
      ['since=yesterday', 'since'],
      ['until=2026-13-01', 'until'],
      ['since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z', 'since'],
      ['since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z&interval=minute', 'interval'],
      ['colour=red', 'colour'],
    ])('refuses ?%s naming %s', async (query, field) => {
      const res = await admin.get(`/api/v1/llm/usage?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.error?.details?.field).toBe(field);
    });

    it('exposes Prometheus counters after record() and cooledDown()', async () => {
      recorder.record(row({ provider: 'p1', model: 'mx', ttft_ms: 250 }));
      recorder.record(row({ provider: 'p1', model: 'mx', status: 'failed', upstream_status: 502 }));
      recorder.cooledDown('p1', 'mx', 'test');
      await recorder.flush();
      const text = await (
        await fetch(`${t.url}/metrics?format=prometheus`, { headers: { Authorization: `Bearer ${t.keys.admin}` } })
      ).text();
      expect(text).toMatch(/taskhub_llm_calls_total\{provider="p1",model="mx",status="completed"\} 1/);
      expect(text).toMatch(/taskhub_llm_calls_total\{provider="p1",model="mx",status="failed"\} 1/);
      expect(text).toMatch(/taskhub_llm_tokens_total\{provider="p1",model="mx",kind="prompt"\} 20/);
      expect(text).toMatch(/taskhub_llm_tokens_total\{provider="p1",model="mx",kind="completion"\} 10/);
      expect(text).toMatch(/taskhub_llm_upstream_errors_total\{provider="p1",model="mx"\} 1/);
      expect(text).toMatch(/taskhub_llm_cooldowns_total\{provider="p1",model="mx"\} 1/);
      expect(text).toMatch(/taskhub_llm_ttft_seconds_count\{provider="p1",model="mx"\} 2/);
    });
  });
});
