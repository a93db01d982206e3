import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

interface Status {
  deployments: {
    provider: string;
    model: string;
    in_flight: number;
    cooldown_until: string | null;
    calls_last_minute: number;
    errors_last_minute: number;
  }[];
  running: { request_id: string; model: string; key_id: string | null; started_at: string }[];
}

// GET /api/v1/llm/status, the dashboard's LLM view: cooldowns, recent errors, running requests.
describe('LLM status (GET /api/v1/llm/status)', () => {
  let t: TestApp;
  let up: FakeProvider;
  let down: FakeProvider;

  beforeAll(async () => {
    [up, down] = await Promise.all([
      startFakeProvider({ models: ['ok-model'] }),
      startFakeProvider({ models: ['bad-model'] }),
    ]);
    t = await startTestApp({
      LLM_PROVIDERS: JSON.stringify([
        { name: 'up', base_url: up.url, models: ['ok-model'] },
        { name: 'down', base_url: down.url, models: ['bad-model'] },
      ]),
      LLM_COOLDOWN_MS: '30000',
    });
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([up.close(), down.close()]);
  });

  const status = async (key = t.keys.admin): Promise<{ code: number; body: { data: Status } }> => {
    const res = await fetch(`${t.url}/api/v1/llm/status`, { headers: { authorization: `Bearer ${key}` } });
    return { code: res.status, body: (await res.json()) as { data: Status } };
  };
  const chat = (model: string, signal?: AbortSignal): Promise<Response> =>
    fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.client}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
      signal,
    });

  it('is for admins only', async () => {
    expect((await status(t.keys.client)).code).toBe(403);
    const res = await fetch(`${t.url}/api/v1/llm/status`);
    expect(res.status).toBe(401);
  });

  it('lists every deployment, its errors of the last minute and its cooldown', async () => {
    const idle = await status();
    expect(idle.code).toBe(200);
    expect(idle.body.data.deployments).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ provider: 'up', model: 'ok-model', in_flight: 0, cooldown_until: null }),
        expect.objectContaining({ provider: 'down', model: 'bad-model', cooldown_until: null }),
      ]),
    );
    expect((await chat('ok-model')).status).toBe(200);
    // A 401 from the upstream (its credentials) cools the deployment down at once.
    down.setBehavior({ status: 401 });
    expect((await chat('bad-model')).ok).toBe(false);
    const after = (await status()).body.data.deployments;
    const ok = after.find((d) => d.provider === 'up');
    const bad = after.find((d) => d.provider === 'down');
    expect(ok).toMatchObject({ calls_last_minute: 1, errors_last_minute: 0, cooldown_until: null });
    expect(bad?.cooldown_until).not.toBeNull();
    expect(new Date(bad?.cooldown_until as string).getTime()).toBeGreaterThan(Date.now() + 20_000);
  });

  it('lists a running request with its model, key and start, until it ends', async () => {
    up.setBehavior({ hang: true });
    const gone = new AbortController();
    const pending = chat('ok-model', gone.signal).catch(() => undefined);
    let running: Status['running'] = [];
    for (let i = 0; i < 50 && running.length === 0; i++) {
      running = (await status()).body.data.running;
      if (running.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ model: 'ok-model', key_id: expect.any(String) });
    expect(Date.parse(running[0].started_at)).toBeLessThanOrEqual(Date.now());
    // Interrupting it by that id (what the dashboard's button does) ends it.
    const stop = await fetch(`${t.url}/v1/interrupt`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: running[0].request_id }),
    });
    expect(stop.status).toBe(200);
    await pending;
    gone.abort();
    for (let i = 0; i < 50 && running.length > 0; i++) {
      running = (await status()).body.data.running;
      if (running.length > 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(running).toEqual([]);
    up.setBehavior({});
  });
});
