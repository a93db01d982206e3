import OpenAI from 'openai';
import { io } from 'socket.io-client';
import { ApexSocket } from '../support/apex-node.js';
import { TestDevice } from '../support/device.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// Seed 001's OpenAI-compatible gateway, driven by the official `openai` client against fake
// upstream providers (plain node:http servers that record whether each call was aborted).
describe('LLM gateway (OpenAI-compatible /v1)', () => {
  let t: TestApp;
  let a: FakeProvider; // primary deployment of fake-model
  let b: FakeProvider; // backup deployment of fake-model (weight 0: tried last), and other-model
  let slow: FakeProvider; // slow-model, with a 400 ms timeout
  let client: OpenAI;

  const providers = (): string =>
    JSON.stringify([
      { name: 'a', base_url: a.url, api_key: 'sk-upstream-a', models: ['fake-model'], weight: 1 },
      { name: 'b', base_url: b.url, models: ['fake-model', 'other-model'], weight: 0 },
      { name: 'slow', base_url: slow.url, models: ['slow-model'], timeout_ms: 400 },
    ]);

  const raw = (path: string, body: unknown, key: string | undefined = t.keys.client): Promise<Response> =>
    fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    [a, b, slow] = await Promise.all([
      startFakeProvider({ models: ['fake-model'], apiKey: 'sk-upstream-a' }),
      startFakeProvider({ models: ['fake-model', 'other-model'] }),
      startFakeProvider({ models: ['slow-model'] }),
    ]);
    t = await startTestApp({
      LLM_PROVIDERS: providers(),
      LLM_ALIASES: JSON.stringify({ 'gpt-4o-mini': 'fake-model' }),
      LLM_FALLBACKS: JSON.stringify({ 'slow-model': ['other-model'] }),
      LLM_COOLDOWN_MS: '1500',
    });
    client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.keys.client, maxRetries: 0 });
  });
  afterEach(() => {
    a.reset();
    b.reset();
    slow.reset();
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([a.close(), b.close(), slow.close()]);
  });

  const hello = [{ role: 'user' as const, content: 'hello there' }];

  it('lists every model and alias', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(['fake-model', 'gpt-4o-mini', 'other-model', 'slow-model']);
  });

  it('answers a plain completion with x-request-id, sending the provider its own key', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'fake-model', messages: hello })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0].message.content).toBe('echo: hello there');
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-request-id')).toMatch(/.+/);
    expect(a.lastRequest()?.headers.authorization).toBe('Bearer sk-upstream-a');
    expect(a.lastRequest()?.body?.model).toBe('fake-model');
  });

  it('resolves an alias to the model it names', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hello });
    expect(r.choices[0].message.content).toBe('echo: hello there');
    expect(a.lastRequest()?.body?.model).toBe('fake-model');
  });

  it('streams chunks exactly as OpenAI does, with the usage chunk only when asked', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('echo: hello there');
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBeGreaterThan(0);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);

    const plain = await client.chat.completions.create({ model: 'fake-model', messages: hello, stream: true });
    const plainChunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of plain) plainChunks.push(c);
    expect(plainChunks.some((c) => c.usage)).toBe(false);
    // The gateway asked the upstream for usage anyway (to charge what was used).
    expect(a.lastRequest()?.body?.stream_options).toMatchObject({ include_usage: true });
  });

  it.each(['crlf', 'cr', 'crlf-lf'] as const)(
    'reads an upstream stream whose lines end in %s (all valid SSE): the content arrives intact',
    async (lineEnding) => {
      // No drip: the frames are written at once and usually reach the gateway in one piece, where
      // an event boundary falls inside a chunk (the sse-parser unit tests cut at every byte).
      a.setBehavior({ lineEnding });
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: '你好 世界 🌍 hello there' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const c of stream) chunks.push(c);
      expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('echo: 你好 世界 🌍 hello there');
      expect(chunks[chunks.length - 1].usage?.completion_tokens).toBeGreaterThan(0);
      expect(chunks[0].choices[0]?.delta?.role).toBe('assistant');
      expect(a.requests).toHaveLength(1);
      expect(b.requests).toHaveLength(0);
    },
  );

  it('streams tool calls that the client helper assembles', async () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_schedule',
          description: 'today',
          parameters: { type: 'object', properties: { input: { type: 'string' } } },
        },
      },
    ];
    const runner = client.chat.completions.stream({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'please call tool now' }],
      tools,
      tool_choice: 'auto',
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('get_schedule');
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ input: 'please call tool now' });
    expect(final.choices[0].finish_reason).toBe('tool_calls');
  });

  it('fails over to another deployment before the first byte', async () => {
    a.setBehavior({ status: 500 });
    const r = await client.chat.completions.create({ model: 'fake-model', messages: hello });
    expect(r.choices[0].message.content).toBe('echo: hello there');
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
    // Also for a stream cut before any content reached the client.
    a.setBehavior({ cutAfterChunks: 1 });
    const s = await client.chat.completions.create({ model: 'fake-model', messages: hello, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('echo: hello there');
  });

  it('never retries once content reached the client: the failure comes in-band and the stream ends', async () => {
    a.setBehavior({ cutAfterChunks: 3, dripMs: 20, chunks: 10 });
    const s = await client.chat.completions.create({ model: 'fake-model', messages: hello, stream: true });
    let text = '';
    await expect(
      (async () => {
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      })(),
    ).rejects.toThrow();
    expect(text.length).toBeGreaterThan(0);
    expect(b.requests).toHaveLength(0); // no duplicated output from a second deployment
  });

  it('falls back to another model when every deployment of the first failed', async () => {
    slow.setBehavior({ status: 503 });
    const r = await client.chat.completions.create({ model: 'slow-model', messages: hello });
    expect(r.choices[0].message.content).toBe('echo: hello there');
    expect(b.lastRequest()?.body?.model).toBe('other-model');
  });

  it('times a hanging deployment out after its timeout_ms and aborts it', async () => {
    slow.setBehavior({ hang: true });
    b.setBehavior({ status: 500 });
    const started = Date.now();
    const err = await client.chat.completions.create({ model: 'slow-model', messages: hello }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(Date.now() - started).toBeLessThan(3000);
    await slow.waitFor(() => slow.requests[0]?.aborted === true);
  });

  it('stops a streaming request on /v1/interrupt: the upstream sees the abort within 100 ms', async () => {
    a.setBehavior({ dripMs: 200, chunks: 50 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'fake-model', messages: hello, stream: true })
      .withResponse();
    const requestId = response.headers.get('x-request-id') as string;
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    const interrupted = await raw('/v1/interrupt', { request_id: requestId });
    const at = Date.now();
    expect(interrupted.status).toBe(200);
    expect(await interrupted.json()).toEqual({ request_id: requestId, interrupted: true });
    await a.waitFor(() => a.requests[0]?.aborted === true, 1000);
    expect((a.requests[0].abortedAt as number) - at).toBeLessThan(100);
    // The client's stream ends (with the in-band error) instead of dripping on.
    await expect(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next());
      })(),
    ).rejects.toThrow(/interrupted/);
    expect(b.requests).toHaveLength(0);
  });

  it('stops a request after LLM_MAX_REQUEST_MS (hot), aborting the upstream: 504, or in-band once streaming', async () => {
    const admin = { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' };
    const set = await fetch(`${t.url}/v1/config`, {
      method: 'PATCH',
      headers: admin,
      body: JSON.stringify({ LLM_MAX_REQUEST_MS: 1000 }),
    });
    expect(set.status).toBe(200);
    try {
      a.setBehavior({ hang: true });
      b.setBehavior({ hang: true });
      const started = Date.now();
      const err = await client.chat.completions
        .create({ model: 'fake-model', messages: hello })
        .catch((e: unknown) => e);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
      expect(Date.now() - started).toBeLessThan(2500);
      await a.waitFor(() => a.requests[0]?.aborted === true, 1000);
      a.reset();
      b.reset();
      a.setBehavior({ dripMs: 300, chunks: 20 });
      const stream = await client.chat.completions.create({ model: 'fake-model', messages: hello, stream: true });
      let text = '';
      await expect(
        (async () => {
          for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
        })(),
      ).rejects.toThrow(/longer than 1000 ms/);
      expect(text.length).toBeGreaterThan(0);
    } finally {
      await fetch(`${t.url}/v1/config/LLM_MAX_REQUEST_MS`, { method: 'DELETE', headers: admin });
    }
  });

  it('answers 404 in OpenAI shape when nothing runs under the id', async () => {
    const r = await raw('/v1/interrupt', { request_id: 'nothing-runs-here' });
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({
      error: {
        message: expect.any(String),
        type: 'invalid_request_error',
        param: 'request_id',
        code: 'request_not_found',
      },
    });
  });

  it('aborts the upstream call when the client disconnects', async () => {
    a.setBehavior({ dripMs: 200, chunks: 50 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'fake-model', messages: hello, stream: true },
      { signal: controller.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const at = Date.now();
    controller.abort();
    await a.waitFor(() => a.requests[0]?.aborted === true, 1000);
    expect((a.requests[0].abortedAt as number) - at).toBeLessThan(100);
  });

  it('cools a deployment down after a 401 and uses it again after LLM_COOLDOWN_MS', async () => {
    a.setBehavior({ status: 401 });
    await client.chat.completions.create({ model: 'fake-model', messages: hello }); // a fails, b answers
    a.reset();
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'fake-model', messages: hello });
    expect(a.requests).toHaveLength(0); // resting
    expect(b.requests).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 1600));
    await client.chat.completions.create({ model: 'fake-model', messages: hello });
    expect(a.requests).toHaveLength(1);
  });

  it('passes a 429 on with retry-after when every deployment is rate limited', async () => {
    a.setBehavior({ status: 429, retryAfterSeconds: 7 });
    b.setBehavior({ status: 429, retryAfterSeconds: 7 });
    const err = await client.chat.completions.create({ model: 'fake-model', messages: hello }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('7');
  });

  it('refuses an unknown model with 404 model_not_found', async () => {
    const err = await client.chat.completions
      .create({ model: 'no-such-model', messages: hello })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('model');
  });

  it('refuses a missing or wrong key with 401 in OpenAI shape', async () => {
    const anonymous = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(anonymous.chat.completions.create({ model: 'fake-model', messages: hello })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const r = await raw('/v1/chat/completions', { model: 'fake-model', messages: hello }, '');
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: unknown }).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'invalid_api_key',
    });
  });

  it.each([
    ['a body that is not JSON', '{"model": ', 'body'],
    ['a JSON array', [1], 'body'],
    ['no messages', { model: 'fake-model' }, 'messages'],
    ['empty messages', { model: 'fake-model', messages: [] }, 'messages'],
    ['a message without a role', { model: 'fake-model', messages: [{ content: 'x' }] }, 'messages[0].role'],
    [
      'a message with a numeric content',
      { model: 'fake-model', messages: [{ role: 'user', content: 5 }] },
      'messages[0].content',
    ],
    ['a model that is not a string', { model: 7, messages: hello }, 'model'],
    ['temperature 3', { model: 'fake-model', messages: hello, temperature: 3 }, 'temperature'],
    ['stream as a string', { model: 'fake-model', messages: hello, stream: 'yes' }, 'stream'],
    [
      'stream_options without stream',
      { model: 'fake-model', messages: hello, stream_options: { include_usage: true } },
      'stream_options',
    ],
    ['max_tokens 0', { model: 'fake-model', messages: hello, max_tokens: 0 }, 'max_tokens'],
    ['tools that are not an array', { model: 'fake-model', messages: hello, tools: {} }, 'tools'],
    [
      'a tool without a name',
      { model: 'fake-model', messages: hello, tools: [{ type: 'function', function: {} }] },
      'tools[0].function.name',
    ],
    ['a bad tool_choice', { model: 'fake-model', messages: hello, tool_choice: 'sometimes' }, 'tool_choice'],
  ])('refuses %s with 400 naming the parameter, calling no upstream', async (_what, body, param) => {
    const r = await raw('/v1/chat/completions', body);
    expect(r.status).toBe(400);
    const json = (await r.json()) as { error: Record<string, unknown> };
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(a.requests.length + b.requests.length).toBe(0);
  });

  it('shows and replaces the LLM configuration at /v1/config/llm (keys masked, refused with the field named)', async () => {
    const admin = { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' };
    const shown = (await (await fetch(`${t.url}/v1/config/llm`, { headers: admin })).json()) as {
      data: { providers: Record<string, unknown>[] };
    };
    expect(shown.data.providers[0]).toMatchObject({ name: 'a', api_key: 'sk-****' });
    expect(JSON.stringify(shown)).not.toContain('sk-upstream-a');
    const listed = (await (await fetch(`${t.url}/v1/config/LLM_PROVIDERS`, { headers: admin })).json()) as {
      data: { value: unknown };
    };
    expect(String(listed.data.value)).not.toContain('sk-upstream-a');

    const bad = await fetch(`${t.url}/v1/config/llm`, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({ providers: [{ name: 'x', base_url: 'ftp://nope', models: ['m'] }] }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: unknown } }).error.details).toMatchObject({
      field: 'providers[0].base_url',
    });

    const next = [
      ...(JSON.parse(providers()) as object[]),
      { name: 'extra', base_url: b.url, models: ['extra-model'] },
    ];
    const put = await fetch(`${t.url}/v1/config/llm`, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({
        providers: next,
        aliases: { 'gpt-4o-mini': 'fake-model' },
        fallbacks: { 'slow-model': ['other-model'] },
      }),
    });
    expect(put.status).toBe(200);
    b.setModels(['fake-model', 'other-model', 'extra-model']);
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain('extra-model');
    const r = await client.chat.completions.create({ model: 'extra-model', messages: hello });
    expect(r.choices[0].message.content).toBe('echo: hello there');
  });

  describe('nodes and client channels', () => {
    const nodeUrl = (): string => `${t.url.replace('http', 'ws')}/abp-distributed-server/VCP_Key=${t.keys.worker}`;

    it('answers llm_request on the Socket.IO device channel, streamed and not', async () => {
      const d = new TestDevice(t.url, t.keys.worker);
      try {
        await d.connected();
        await d.request('node_register', { node_id: 'llm-sio' });
        const plain = await d.request('llm_request', { id: 'q1', model: 'fake-model', messages: hello });
        expect(plain).toMatchObject({
          id: 'q1',
          object: 'chat.completion',
          choices: [{ message: { content: 'echo: hello there' } }],
        });
        d.socket.emit('llm_request', { id: 'q2', model: 'fake-model', messages: hello, stream: true });
        const done = await d.next('llm_response', (x) => x.id === 'q2');
        const chunks = d.received
          .filter((r) => r.event === 'llm_response_chunk' && r.data.id === 'q2')
          .map((r) => r.data.chunk as OpenAI.Chat.Completions.ChatCompletionChunk);
        expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('echo: hello there');
        expect(done).toMatchObject({
          id: 'q2',
          choices: [{ message: { role: 'assistant', content: 'echo: hello there' } }],
        });
        const bad = await d.request('llm_request', { id: 'q3', model: 'no-such-model', messages: hello });
        expect(bad).toMatchObject({ id: 'q3', error: { code: 'model_not_found', param: 'model' } });
        const noId = await d.request('llm_request', { model: 'fake-model', messages: hello });
        expect(noId).toMatchObject({ error: { param: 'id' } });
      } finally {
        d.close();
      }
    });

    it('answers llm_request on the raw node channel, and a node that leaves aborts its call', async () => {
      const node = await ApexSocket.open(nodeUrl());
      try {
        await node.request('node_register', { node_id: 'llm-ws' });
        const reply = await node.request('llm_request', { model: 'fake-model', messages: hello });
        expect(reply).toMatchObject({
          type: 'llm_response',
          data: { object: 'chat.completion', choices: [{ message: { content: 'echo: hello there' } }] },
        });
        node.send('llm_request', { id: 'w2', model: 'fake-model', messages: hello, stream: true });
        await node.nextOf('llm_response_chunk', (f) => f.data.id === 'w2');
        const last = await node.nextOf('llm_response', (f) => f.data.id === 'w2');
        expect((last.data.choices as { message: { content: string } }[])[0].message.content).toBe('echo: hello there');
        const unregistered = await ApexSocket.open(nodeUrl());
        const refused = await unregistered.request('llm_request', { model: 'fake-model', messages: hello });
        expect(refused.data).toMatchObject({ error: { code: 'not_registered' } });
        unregistered.close();
        a.reset();
        a.setBehavior({ dripMs: 200, chunks: 50 });
        node.send('llm_request', { id: 'w3', model: 'fake-model', messages: hello, stream: true });
        await node.nextOf('llm_response_chunk', (f) => f.data.id === 'w3');
        node.ws.terminate();
        await a.waitFor(() => a.requests[0]?.aborted === true, 1000);
      } finally {
        node.close();
      }
    });

    it('streams chat.chunk and chat.completed to /ws and /events clients watching the request', async () => {
      const requestId = `front-${Date.now()}`;
      const ws = await ApexSocket.open(`${t.url.replace('http', 'ws')}/ws?token=${t.keys.client}`);
      const other = await ApexSocket.open(`${t.url.replace('http', 'ws')}/ws?token=${t.keys.admin}`);
      const sock = io(`${t.url}/events`, { auth: { token: t.keys.client }, transports: ['websocket'], forceNew: true });
      try {
        ws.send('subscribe_chat', { request_id: requestId });
        await ws.nextOf('chat_subscribed');
        other.send('subscribe_chat', { all: true });
        await other.nextOf('chat_subscribed');
        await new Promise<void>((ok) => sock.on('connect', () => ok()));
        const ack = (await sock.timeout(2000).emitWithAck('subscribe_chat', { request_id: requestId })) as {
          success: boolean;
        };
        expect(ack.success).toBe(true);
        const sioChunks: unknown[] = [];
        sock.on('chat.chunk', (c: unknown) => sioChunks.push(c));
        const sioDone = new Promise<Record<string, unknown>>((ok) => sock.on('chat.completed', ok));
        // A client key may not watch every chat.
        ws.send('subscribe_chat', { all: true });
        expect((await ws.nextOf('error')).data).toMatchObject({ code: 'VALIDATION_ERROR' });

        const stream = await client.chat.completions.create(
          { model: 'fake-model', messages: hello, stream: true },
          { headers: { 'x-request-id': requestId } },
        );
        for await (const _ of stream) void _;
        const chunk = await ws.nextOf('chat.chunk');
        expect(chunk.data).toMatchObject({ request_id: requestId, chunk: { object: 'chat.completion.chunk' } });
        const completed = await ws.nextOf('chat.completed');
        expect(completed.data).toMatchObject({
          request_id: requestId,
          completion: { choices: [{ message: { content: 'echo: hello there' } }] },
          error: null,
        });
        await other.nextOf('chat.completed', (f) => f.data.request_id === requestId);
        expect((await sioDone).request_id).toBe(requestId);
        expect(sioChunks.length).toBeGreaterThan(0);
        // Another key's client watching the same id hears nothing of it.
        const workerWs = await ApexSocket.open(`${t.url.replace('http', 'ws')}/ws?token=${t.keys.worker}`).catch(
          () => undefined,
        );
        workerWs?.close();
      } finally {
        ws.close();
        other.close();
        sock.close();
      }
    });
  });

  describe('keys with limits, and usage', () => {
    const adminHeaders = (): Record<string, string> => ({
      authorization: `Bearer ${t.keys.admin}`,
      'content-type': 'application/json',
    });
    async function keyWith(limits: Record<string, unknown>): Promise<{ key: string; id: string }> {
      const r = await fetch(`${t.url}/api/v1/api-keys`, {
        method: 'POST',
        headers: adminHeaders(),
        body: JSON.stringify({ name: `llm-${Date.now()}-${Math.random()}`, role: 'client', limits }),
      });
      expect(r.status).toBe(201);
      const body = (await r.json()) as { data: { key: string; id: string } };
      return body.data;
    }
    const clientFor = (key: string): OpenAI => new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 0 });

    it('20 parallel calls against max_parallel 4 never run more than 4 at once; the others get 429 with retry-after', async () => {
      const { key } = await keyWith({ max_parallel: 4 });
      // Long enough that all 20 arrive while the first 4 still hold their slots, even on a loaded machine.
      a.setBehavior({ firstByteDelayMs: 1500 });
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          clientFor(key)
            .chat.completions.create({ model: 'fake-model', messages: hello })
            .then(
              () => 'ok',
              (e: unknown) => e,
            ),
        ),
      );
      const ok = results.filter((r) => r === 'ok');
      const limited = results.filter((r) => r instanceof OpenAI.RateLimitError) as InstanceType<
        typeof OpenAI.RateLimitError
      >[];
      expect(ok).toHaveLength(4);
      expect(limited).toHaveLength(16);
      expect(limited[0].headers?.get('retry-after')).toMatch(/^\d+$/);
      expect(a.requests.length + b.requests.length).toBe(4);
      // Slots come back once the calls settle.
      a.reset();
      await expect(
        clientFor(key).chat.completions.create({ model: 'fake-model', messages: hello }),
      ).resolves.toBeDefined();
    });

    it('a spent token budget is 429 with x-should-retry: false, and the official client does not retry it', async () => {
      const { key } = await keyWith({ budget_tokens: 40 });
      const c = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: key, maxRetries: 3 });
      await c.chat.completions.create({ model: 'fake-model', messages: hello, max_tokens: 10 });
      const before = a.requests.length + b.requests.length;
      const err = await c.chat.completions
        .create({ model: 'fake-model', messages: hello, max_tokens: 30 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false');
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');
      expect(a.requests.length + b.requests.length).toBe(before); // refused before any upstream call, not retried
    });

    it('a model the key may not use is 403', async () => {
      const { key } = await keyWith({ models: ['other-model'] });
      const err = await clientFor(key)
        .chat.completions.create({ model: 'fake-model', messages: hello })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      await expect(
        clientFor(key).chat.completions.create({ model: 'other-model', messages: hello }),
      ).resolves.toBeDefined();
    });

    it('records usage per call, charging what an interrupted stream used', async () => {
      const { key, id } = await keyWith({ tpm: 100000 });
      const c = clientFor(key);
      await c.chat.completions.create({ model: 'fake-model', messages: hello });
      a.setBehavior({ dripMs: 100, chunks: 40 });
      const { data: stream, response } = await c.chat.completions
        .create({ model: 'fake-model', messages: hello, stream: true })
        .withResponse();
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      await it.next();
      await raw('/v1/interrupt', { request_id: response.headers.get('x-request-id') }, key);
      await it.next().catch(() => undefined);
      const deadline = Date.now() + 3000;
      let usage:
        | {
            rows: { calls: number; prompt_tokens: number; completion_tokens: number }[];
            totals: { calls: number; completion_tokens: number };
          }
        | undefined;
      while (Date.now() < deadline) {
        const r = await fetch(`${t.url}/api/v1/llm/usage?key_id=${id}`, { headers: adminHeaders() });
        usage = ((await r.json()) as { data: typeof usage }).data;
        if ((usage?.totals.calls ?? 0) >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(usage?.totals.calls).toBe(2);
      expect(usage?.totals.completion_tokens).toBeGreaterThan(3); // the full answer's 3 words plus the partial stream
      const rows = await t.db.query(
        `SELECT status, stream, completion_tokens FROM llm_usage WHERE key_id = $1 ORDER BY started_at`,
        [id],
      );
      expect(rows.map((r: { status: string }) => r.status)).toEqual(['completed', 'interrupted']);
      expect(rows[1].completion_tokens).toBeGreaterThan(0);
      const metrics = await (await fetch(`${t.url}/metrics?format=prometheus`, { headers: adminHeaders() })).text();
      expect(metrics).toContain('taskhub_llm_calls_total');
    });
  });
});
