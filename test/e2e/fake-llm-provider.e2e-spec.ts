// The fake OpenAI-compatible provider (test/support/fake-llm-provider.ts) against the official
// `openai` client pointed straight at it: if the real client accepts it, the gateway's tests can
// trust it as an upstream.
import OpenAI from 'openai';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] },
  },
};

describe('fake LLM provider, driven by the openai client', () => {
  let provider: FakeProvider;
  let client: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider();
    client = new OpenAI({ baseURL: provider.url, apiKey: 'x', maxRetries: 0 });
  });
  afterAll(async () => provider.close());
  beforeEach(() => provider.reset());

  it('lists its models', async () => {
    provider.setModels(['fake-model', 'fake-large']);
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['fake-model', 'fake-large']);
    expect(page.data[0]).toEqual({ id: 'fake-model', object: 'model', created: expect.any(Number), owned_by: 'fake' });
  });

  it('answers a non-stream completion with content, finish_reason and usage', async () => {
    const res = await client.chat.completions.create({
      model: 'fake-model',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello there' },
      ],
    });
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('fake-model');
    expect(res.choices).toEqual([
      {
        index: 0,
        message: { role: 'assistant', content: 'echo: hello there', refusal: null, annotations: [] },
        finish_reason: 'stop',
        logprobs: null,
      },
    ]);
    expect(res.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
    const rec = provider.lastRequest();
    expect(rec).toMatchObject({ id: 1, model: 'fake-model', stream: false, status: 200, aborted: false });
    expect(rec?.headers.authorization).toBe('Bearer x');
    expect(rec?.body?.messages?.[1]).toEqual({ role: 'user', content: 'hello there' });
  });

  it('streams chunks, then a usage chunk with choices [] when include_usage is set', async () => {
    provider.setBehavior({ chunks: 4 });
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'one two' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '', refusal: null });
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe('echo: one two w3');
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBe(4);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish?.choices[0].finish_reason).toBe('stop');
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('streams a tool call that chat.completions.stream() assembles', async () => {
    const runner = client.chat.completions.stream({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'please call tool for Paris' }],
      tools: [weatherTool],
    });
    const final = await runner.finalChatCompletion();
    const choice = final.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    expect(call?.id).toMatch(/^call_/);
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ input: 'please call tool for Paris' });
  });

  it('answers a non-stream tool call when the behavior says so', async () => {
    provider.setBehavior({ toolCall: true });
    const res = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [weatherTool],
    });
    expect(res.choices[0].finish_reason).toBe('tool_calls');
    expect(res.choices[0].message.content).toBeNull();
    expect(res.choices[0].message.tool_calls?.[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather', arguments: '{"input":"weather?"}' },
    });
  });

  it('raises RateLimitError on 429, with retry-after, for the next request only', async () => {
    provider.setBehavior({ status: 429, retryAfterSeconds: 7, times: 1 });
    const err = await client.chat.completions
      .create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const rl = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rl.status).toBe(429);
    expect(rl.code).toBe('rate_limit_exceeded');
    expect(rl.headers.get('retry-after')).toBe('7');
    const ok = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(ok.choices[0].message.content).toBe('echo: hi');
  });

  it('maps 401 and an unknown model to the client errors OpenAI would cause', async () => {
    provider.setBehavior({ status: 401 });
    await expect(
      client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    provider.reset();
    await expect(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('records an AbortController abort mid-stream as aborted within 100 ms', async () => {
    provider.setBehavior({ dripMs: 50, chunks: 40 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'fake-model', messages: [{ role: 'user', content: 'long' }], stream: true },
      { signal: ac.signal },
    );
    let seen = 0;
    let abortedAt = 0;
    // The client's Stream ends its iteration quietly on an abort (no throw).
    for await (const c of stream) {
      if (c.choices[0]?.delta.content && ++seen === 2) {
        abortedAt = Date.now();
        ac.abort();
      }
    }
    expect(seen).toBe(2);
    await provider.waitFor(() => provider.lastRequest()?.aborted === true, 100);
    const rec = provider.lastRequest();
    expect(rec?.abortedAt).toBeDefined();
    expect((rec?.abortedAt ?? 0) - abortedAt).toBeLessThan(100);
  });

  it('records a hung request as aborted when the client times out', async () => {
    provider.setBehavior({ hang: true });
    const started = Date.now();
    const err = await client.chat.completions
      .create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }, { timeout: 300 })
      .catch((e: unknown) => e);
    // Outside jest this is APIConnectionTimeoutError. Under jest's vm realm undici's AbortError
    // (a DOMException of the outer realm) fails the client's `instanceof Error`, loses its name
    // in castToError, and surfaces as the parent class APIConnectionError.
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    await provider.waitFor(() => provider.lastRequest()?.aborted === true, 100);
    const rec = provider.lastRequest();
    expect(rec?.status).toBe(0);
    expect((rec?.abortedAt ?? 0) - started).toBeGreaterThanOrEqual(280);
  });

  it('makes the client throw when the stream is cut mid-way', async () => {
    provider.setBehavior({ cutAfterChunks: 3, chunks: 10 });
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'cut me' }],
      stream: true,
    });
    const got: string[] = [];
    await expect(
      (async () => {
        for await (const c of stream) got.push(c.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow();
    expect(got.length).toBeLessThanOrEqual(3);
    const rec = provider.lastRequest();
    expect(rec).toMatchObject({ cut: true, aborted: false });
  });

  it('makes a non-stream request fail when the body is cut half-way', async () => {
    provider.setBehavior({ cutAfterChunks: 0 });
    await expect(
      client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toThrow();
    const [rec] = await provider.waitForRequests(1, 500);
    expect(rec).toMatchObject({ status: 200, cut: true, aborted: false });
  });

  it('ends a stream with an in-band error frame that the client raises', async () => {
    provider.setBehavior({ inBandErrorAfterChunks: 2 });
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'a b c' }],
      stream: true,
    });
    await expect(
      (async () => {
        for await (const _ of stream) {
          /* drain */
        }
      })(),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it('applies a per-model behavior only to that model', async () => {
    provider.setModels(['fake-model', 'slow']);
    provider.setBehavior({ firstByteDelayMs: 150 }, 'slow');
    const t0 = Date.now();
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'fast' }] });
    const fast = Date.now() - t0;
    const t1 = Date.now();
    await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'slow' }] });
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
    expect(fast).toBeLessThan(140);
    expect(provider.requests.map((r) => r.model)).toEqual(['fake-model', 'slow']);
  });
});
