import { type Api, apiClient } from '../support/api.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

interface Status {
  waiting: number;
  deployments: { provider: string; model: string; in_flight: number; max_concurrency: number | null }[];
  running: { request_id: string }[];
}

interface Answer {
  label: string;
  status: number;
  headers: Headers;
  body: { choices?: { message: { content: string } }[]; error?: { code: string; message: string } };
  ms: number;
}

const MODEL = 'slot-model';

/**
 * One hub, one deployment with max_concurrency 1, and the fake provider answering each call
 * after a delay: requests beyond the slot wait on the hub, and each freed slot goes to the
 * waiter due (docs/llm.md, "Waiting for a slot, fairly between tenants").
 */
async function startSlotHub(env: Record<string, string> = {}): Promise<{
  t: TestApp;
  provider: FakeProvider;
  admin: Api;
  status: () => Promise<Status>;
  keyIn: (tenant: string, limits?: Record<string, number>) => Promise<string>;
}> {
  const provider = await startFakeProvider({ models: [MODEL] });
  const t = await startTestApp({
    LLM_PROVIDERS: JSON.stringify([{ name: 'one', base_url: provider.url, models: [MODEL], max_concurrency: 1 }]),
    RATE_LIMIT_MAX: '100000',
    ...env,
  });
  const admin = apiClient(t, t.keys.admin);
  const status = async (): Promise<Status> => {
    const res = await admin.get<Status>('/api/v1/llm/status');
    expect(res.status).toBe(200);
    return res.body.data;
  };
  const keyIn = async (tenant: string, limits: Record<string, number> = {}): Promise<string> => {
    expect((await admin.post('/api/v1/tenants', { id: tenant, name: tenant, limits })).status).toBe(201);
    const key = await admin.post<{ key: string }>('/api/v1/api-keys', {
      name: `${tenant}-client`,
      roles: ['client'],
      tenant_id: tenant,
    });
    expect(key.status).toBe(201);
    return key.body.data.key;
  };
  return { t, provider, admin, status, keyIn };
}

/** Resolves once `check()` holds (polled), else fails after `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('LLM gateway: waiting for a slot, fairly between tenants', () => {
  describe('with the default bounds', () => {
    let t: TestApp;
    let provider: FakeProvider;
    let status: () => Promise<Status>;
    let keyIn: (tenant: string, limits?: Record<string, number>) => Promise<string>;
    /** Labels of the requests in the order their answers reached the clients. */
    let done: string[];
    let sent: number;

    beforeAll(async () => {
      ({ t, provider, status, keyIn } = await startSlotHub());
    });
    afterAll(async () => {
      await t.close();
      await provider.close();
    });
    beforeEach(() => {
      done = [];
      sent = 0;
    });
    afterEach(async () => {
      // Nothing left behind: no waiter, no slot, no registered request.
      const s = await status();
      expect(s.waiting).toBe(0);
      expect(s.deployments.every((d) => d.in_flight === 0)).toBe(true);
      expect(s.running).toEqual([]);
      provider.reset();
    });

    const chat = (key: string, label: string, headers: Record<string, string> = {}): Promise<Answer> => {
      sent++;
      const started = Date.now();
      return fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: label }] }),
      }).then(async (res) => {
        const body = (await res.json()) as Answer['body'];
        done.push(label);
        return { label, status: res.status, headers: res.headers, body, ms: Date.now() - started };
      });
    };

    /** Every request sent and not answered is on the hub: one in flight, the others waiting. */
    const allOnHub = (): Promise<void> =>
      until(
        async () => {
          const s = await status();
          return s.waiting + s.deployments[0].in_flight === sent - done.length;
        },
        5000,
        'every request to reach the hub',
      );

    it('a tenant arriving behind another one’s backlog takes turns with it at once', async () => {
      provider.setBehavior({ firstByteDelayMs: 100 });
      // The first call holds the slot long enough for every other one to queue behind it, however
      // slowly the requests reach the hub (a slow CI machine once let 3 of 12 finish first).
      provider.setBehavior({ firstByteDelayMs: 1500, times: 1 }, MODEL);
      const [a, b] = await Promise.all([keyIn('fair-a'), keyIn('fair-b')]);
      const asA = [chat(a, 'a1')];
      await allOnHub();
      asA.push(...Array.from({ length: 11 }, (_, i) => chat(a, `a${i + 2}`)));
      await allOnHub();
      expect((await status()).waiting).toBe(11);
      const mark = done.length;
      expect(mark).toBe(0);
      const asB = Array.from({ length: 3 }, (_, i) => chat(b, `b${i + 1}`));
      await allOnHub();
      expect(done).toEqual([]); // B queued while a1 still held the slot
      const answers = await Promise.all([...asA, ...asB]);
      expect(answers.map((r) => r.status)).toEqual(Array(15).fill(200));
      expect(answers.map((r) => r.body.choices?.[0].message.content)).toEqual(answers.map((r) => `echo: ${r.label}`));
      const afterB = done.slice(mark);
      const bAt = ['b1', 'b2', 'b3'].map((l) => afterB.indexOf(l)).sort((x, y) => x - y);
      // Interleaved (A, B, A, B, A, B …), not served after A's backlog: every B within the first 8 answers after B came.
      expect(bAt[2]).toBeLessThan(8);
      // And all before A's sixth-from-last answer.
      const lastB = Math.max(...['b1', 'b2', 'b3'].map((l) => done.indexOf(l)));
      expect(lastB).toBeLessThan(done.length - 6);
    });

    it('shares the slots by weight: weight 3 gets about three for one', async () => {
      provider.setBehavior({ firstByteDelayMs: 50 });
      const [a, b] = await Promise.all([keyIn('heavy-a', { weight: 3 }), keyIn('light-b', { weight: 1 })]);
      const asA = Array.from({ length: 20 }, (_, i) => chat(a, `a${i + 1}`));
      await allOnHub();
      const asB = Array.from({ length: 12 }, (_, i) => chat(b, `b${i + 1}`));
      await allOnHub();
      const answers = await Promise.all([...asA, ...asB]);
      expect(answers.every((r) => r.status === 200)).toBe(true);
      // The first 12 grants from B's first on, while both still have a backlog.
      const window = done.slice(done.findIndex((l) => l.startsWith('b'))).slice(0, 12);
      const toA = window.filter((l) => l.startsWith('a')).length;
      expect(toA).toBeGreaterThanOrEqual(7);
      expect(toA).toBeLessThanOrEqual(10);
      expect(12 - toA).toBeGreaterThanOrEqual(2);
    });

    it('a tenant alone gets every slot, in the order its requests came', async () => {
      provider.setBehavior({ firstByteDelayMs: 60 });
      const solo = await keyIn('solo');
      const answers: Promise<Answer>[] = [];
      for (let i = 1; i <= 6; i++) {
        answers.push(chat(solo, `s${i}`));
        await allOnHub();
      }
      expect((await Promise.all(answers)).every((r) => r.status === 200)).toBe(true);
      expect(done).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
      // The provider saw them in that order too, one at a time.
      expect(provider.requests.map((r) => r.body?.messages?.at(-1)?.content)).toEqual(done);
    });

    it('/v1/interrupt stops a waiting request at once (499); the slot goes on to the next', async () => {
      provider.setBehavior({ firstByteDelayMs: 600 });
      const first = chat(t.keys.client, 'first');
      await allOnHub();
      const stopped = chat(t.keys.client, 'stopped', { 'x-request-id': 'slot-wait-interrupted' });
      const next = chat(t.keys.client, 'next');
      await allOnHub();
      const interrupt = await fetch(`${t.url}/v1/interrupt`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.keys.client}`, 'content-type': 'application/json' },
        body: JSON.stringify({ request_id: 'slot-wait-interrupted' }),
      });
      expect(interrupt.status).toBe(200);
      const answer = await stopped;
      expect(answer.status).toBe(499);
      expect(answer.body.error?.code).toBe('interrupted');
      expect((await status()).waiting).toBe(1);
      expect((await first).status).toBe(200);
      expect((await next).status).toBe(200);
      expect(done).toEqual(['stopped', 'first', 'next']);
      expect(provider.total).toBe(2);
    });
  });

  describe('with LLM_SLOT_WAIT_MS 300 and LLM_SLOT_QUEUE_MAX 2', () => {
    let t: TestApp;
    let provider: FakeProvider;
    let status: () => Promise<Status>;

    beforeAll(async () => {
      ({ t, provider, status } = await startSlotHub({ LLM_SLOT_WAIT_MS: '300', LLM_SLOT_QUEUE_MAX: '2' }));
    });
    afterAll(async () => {
      await t.close();
      await provider.close();
    });
    afterEach(async () => {
      await until(async () => {
        const s = await status();
        return s.waiting === 0 && s.deployments[0].in_flight === 0 && s.running.length === 0;
      });
      provider.reset();
    });

    const chat = async (signal?: AbortSignal): Promise<Answer> => {
      const started = Date.now();
      const res = await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.keys.client}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
        signal,
      });
      const body = (await res.json()) as Answer['body'];
      return { label: '', status: res.status, headers: res.headers, body, ms: Date.now() - started };
    };
    const waiting = (n: number): Promise<void> =>
      until(async () => (await status()).waiting === n, 5000, `${n} waiting`);
    const inFlight = (): Promise<void> =>
      until(async () => (await status()).deployments[0].in_flight === 1, 5000, 'a call in flight');

    it('a wait that outlasts LLM_SLOT_WAIT_MS answers 503 no_available_deployment with retry-after', async () => {
      provider.setBehavior({ firstByteDelayMs: 1200 });
      const first = chat();
      await inFlight();
      const late = await chat();
      expect(late.status).toBe(503);
      expect(late.body.error?.code).toBe('no_available_deployment');
      expect(late.body.error?.message).toContain('LLM_SLOT_WAIT_MS');
      expect(late.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(late.ms).toBeGreaterThanOrEqual(280);
      expect(late.ms).toBeLessThan(1100);
      expect((await first).status).toBe(200);
      expect(provider.total).toBe(1);
    });

    it('refuses at once the request beyond LLM_SLOT_QUEUE_MAX waiters', async () => {
      provider.setBehavior({ firstByteDelayMs: 1200 });
      const first = chat();
      await inFlight();
      const waiters = [chat(), chat()];
      await waiting(2);
      // The operator's gauge says the same.
      const scraped = await fetch(`${t.url}/metrics`, {
        headers: { accept: 'text/plain;version=0.0.4', authorization: `Bearer ${t.keys.admin}` },
      });
      expect(await scraped.text()).toMatch(/^taskhub_llm_slot_waiting 2$/m);
      const third = await chat();
      expect(third.status).toBe(503);
      expect(third.body.error?.code).toBe('no_available_deployment');
      expect(third.body.error?.message).toContain('LLM_SLOT_QUEUE_MAX');
      expect(third.ms).toBeLessThan(250);
      expect((await Promise.all(waiters)).map((r) => r.status)).toEqual([503, 503]);
      expect((await first).status).toBe(200);
    });

    it('a waiting client that goes away is removed at once; the next waiter gets the slot', async () => {
      provider.setBehavior({ firstByteDelayMs: 150 });
      const first = chat();
      await inFlight();
      const leaving = new AbortController();
      const gone = chat(leaving.signal).catch((e: unknown) => e);
      await waiting(1);
      const next = chat();
      await waiting(2);
      leaving.abort();
      expect(await gone).toMatchObject({ name: 'AbortError' });
      await waiting(1);
      expect((await first).status).toBe(200);
      const answer = await next;
      expect(answer.status).toBe(200);
      expect(answer.body.choices?.[0].message.content).toBe('echo: hi');
      // The one that left never reached the provider.
      expect(provider.total).toBe(2);
    });
  });
});
