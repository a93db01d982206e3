import OpenAI from 'openai';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { freshDatabase, HubProcess } from '../support/hub-process.js';

// /v1/interrupt reaches a request running on another hub process (over PostgreSQL), and a
// provider configured with PUT /v1/config/llm on one hub serves on the other. Real processes.
const skipReason = HubProcess.skipReason();
if (skipReason) process.stdout.write(`\n[llm-two-hubs] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('LLM gateway on two hub processes', () => {
  let a: HubProcess;
  let b: HubProcess;
  let provider: FakeProvider;

  beforeAll(async () => {
    provider = await startFakeProvider({ models: ['fake-model', 'late-model'] });
    const db = await freshDatabase('llm_two_hubs');
    const env = {
      DATABASE_URL: db,
      AUTH_REQUIRED: 'false',
      RATE_LIMIT_MAX: '0',
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: provider.url, models: ['fake-model'] }]),
    };
    [a, b] = await Promise.all([new HubProcess(env).start(), new HubProcess(env).start()]);
  }, 60_000);
  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await provider?.close();
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  it('interrupts on B a stream running on A: the upstream sees the abort at once', async () => {
    provider.setBehavior({ dripMs: 200, chunks: 50 });
    const onA = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const { data: stream, response } = await onA.chat.completions
      .create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true })
      .withResponse();
    const id = response.headers.get('x-request-id') as string;
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const started = Date.now();
    const r = await fetch(`${b.url}/v1/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: id }),
    });
    expect(r.status).toBe(200);
    await provider.waitFor(() => provider.requests[0]?.aborted === true, 2000);
    expect((provider.requests[0].abortedAt as number) - started).toBeLessThan(1000);
    const missing = await fetch(`${b.url}/v1/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: id }),
    });
    expect(missing.status).toBe(404);
  }, 30_000);

  it('applies PUT /v1/config/llm made on A on B too', async () => {
    provider.reset();
    const put = await fetch(`${a.url}/v1/config/llm`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        providers: [{ name: 'fake', base_url: provider.url, models: ['fake-model', 'late-model'] }],
        aliases: { late: 'late-model' },
      }),
    });
    expect(put.status).toBe(200);
    const onB = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const deadline = Date.now() + 3000;
    let ids: string[] = [];
    while (Date.now() < deadline) {
      ids = (await onB.models.list()).data.map((m) => m.id);
      if (ids.includes('late')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ids).toEqual(expect.arrayContaining(['fake-model', 'late-model', 'late']));
    const r = await onB.chat.completions.create({ model: 'late', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.choices[0].message.content).toBe('echo: hi');
    expect(provider.lastRequest()?.body?.model).toBe('late-model');
  }, 30_000);
});
