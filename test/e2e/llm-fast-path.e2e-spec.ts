import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// POST /v1/chat/completions has a lean route (src/common/hot-routes.ts) in front of
// Nest's. Each case below is sent through the lean route, then through Nest's (the lean route's
// layer taken out of the Express stack for that call), and the two answers must be the same:
// status, body (less the ids and times every answer has its own of), the headers a client reads,
// and the usage row. A drift between the two paths fails here.
describe('LLM chat completions: the lean route answers as the Nest route does', () => {
  let t: TestApp;
  let provider: FakeProvider;

  interface Layer {
    route?: { path?: string; stack?: { handle: { name?: string } }[] };
  }
  const stack = (): Layer[] => (t.app.getHttpAdapter().getInstance() as { router: { stack: Layer[] } }).router.stack;
  const isFastPath = (l: Layer): boolean =>
    l.route?.path === '/v1/chat/completions' && l.route.stack?.some((s) => s.handle.name === 'hotRoute') === true;

  /** Runs `call` with Nest serving the route: the lean layer is out of the stack meanwhile. */
  async function viaNest<T>(call: () => Promise<T>): Promise<T> {
    const layers = stack();
    const at = layers.findIndex(isFastPath);
    const [layer] = layers.splice(at, 1);
    try {
      return await call();
    } finally {
      layers.splice(at, 0, layer);
    }
  }

  beforeAll(async () => {
    provider = await startFakeProvider({ models: ['fake-model'] });
    t = await startTestApp({
      LLM_PROVIDERS: JSON.stringify([{ name: 'p', base_url: provider.url, models: ['fake-model'] }]),
      RATE_LIMIT_MAX: '40',
    });
  });
  afterAll(async () => {
    await t?.close();
    await provider?.close();
  });

  // The headers a client may read; date, content-length and the request's own id vary per answer.
  const READ = [
    'content-type',
    'cache-control',
    'x-ratelimit-limit',
    'retry-after',
    'x-should-retry',
    'vary',
    'access-control-expose-headers',
    'x-content-type-options',
    'x-frame-options',
    'strict-transport-security',
    'etag',
  ];
  /** Ids, times and durations differ between two calls; everything else must not. */
  const normal = (text: string): string =>
    text
      .replace(/"(id|created|request_id|completion_id)":("[^"]*"|\d+)/g, '"$1":"*"')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '*');

  async function call(
    body: unknown,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string | null>; body: string; requestId: string | null }> {
    const r = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: r.status,
      headers: Object.fromEntries(READ.map((h) => [h, r.headers.get(h)])),
      body: normal(await r.text()),
      requestId: r.headers.get('x-request-id'),
    };
  }

  const hello = [{ role: 'user', content: 'hello there' }];
  const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

  it('is mounted in front of the Nest route', () => {
    const layers = stack();
    const lean = layers.findIndex(isFastPath);
    const nest = layers.findIndex((l) => l.route?.path === '/v1/chat/completions' && !isFastPath(l));
    expect(lean).toBeGreaterThanOrEqual(0);
    expect(nest).toBeGreaterThan(lean);
  });

  it.each<[string, () => unknown, () => Record<string, string>, number]>([
    ['no key: 401', () => ({ model: 'fake-model', messages: hello }), () => ({}), 401],
    ['an unknown key: 401', () => ({ model: 'fake-model', messages: hello }), () => auth('th_nope'), 401],
    ['a malformed Authorization: 401', () => ({ messages: hello }), () => ({ authorization: 'Basic abc' }), 401],
    [
      "another tenant's X-Tenant-Id: 404 in OpenAI's shape",
      () => ({ model: 'fake-model', messages: hello }),
      () => ({ ...auth(t.keys.client), 'x-tenant-id': 'someone-else' }),
      404,
    ],
    ['empty messages: 400 naming the parameter', () => ({ messages: [] }), () => auth(t.keys.client), 400],
    ['a body that is not JSON: 400', () => '{"model": ', () => auth(t.keys.client), 400],
    ['an unknown model: 404', () => ({ model: 'nope', messages: hello }), () => auth(t.keys.worker), 404],
    ['a completion: 200', () => ({ model: 'fake-model', messages: hello }), () => auth(t.keys.client), 200],
    [
      'a stream with usage: 200',
      () => ({ model: 'fake-model', messages: hello, stream: true, stream_options: { include_usage: true } }),
      () => auth(t.keys.client),
      200,
    ],
  ])('%s', async (_what, body, headers, status) => {
    const lean = await call(body(), headers());
    const nest = await viaNest(() => call(body(), headers()));
    expect(lean.status).toBe(status);
    expect(lean).toEqual({ ...nest, requestId: lean.requestId });
    expect(lean.requestId).toMatch(/.+/);
  });

  it('echoes the X-Request-Id it was sent, on answers and refusals alike', async () => {
    for (const headers of [{ ...auth(t.keys.client) }, {}]) {
      const lean = await call({ model: 'fake-model', messages: hello }, { ...headers, 'x-request-id': 'lean-1' });
      const nest = await viaNest(() =>
        call({ model: 'fake-model', messages: hello }, { ...headers, 'x-request-id': 'nest-1' }),
      );
      expect([lean.requestId, nest.requestId]).toEqual(['lean-1', 'nest-1']);
    }
  });

  it('records the same usage row, under the request id', async () => {
    await call({ model: 'fake-model', messages: hello }, { ...auth(t.keys.client), 'x-request-id': 'usage-lean' });
    await viaNest(() =>
      call({ model: 'fake-model', messages: hello }, { ...auth(t.keys.client), 'x-request-id': 'usage-nest' }),
    );
    const deadline = Date.now() + 3000;
    let rows: Record<string, unknown>[] = [];
    while (Date.now() < deadline) {
      rows = (await t.db.query(
        `SELECT request_id, key_id IS NOT NULL AS keyed, requested_model, model, provider, status, stream,
                prompt_tokens, completion_tokens, upstream_status
           FROM llm_usage WHERE request_id IN ('usage-lean', 'usage-nest') ORDER BY request_id`,
      )) as Record<string, unknown>[];
      if (rows.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toHaveLength(2);
    const [lean, nest] = [
      rows.find((r) => r.request_id === 'usage-lean'),
      rows.find((r) => r.request_id === 'usage-nest'),
    ];
    expect(lean).toEqual({ ...nest, request_id: 'usage-lean' });
    expect(lean).toMatchObject({ keyed: true, status: 'completed', model: 'fake-model', upstream_status: 200 });
  });

  it('counts against the rate limit as configured, and refuses past it in the same shape', async () => {
    const keys = t.app.get((await import('../../src/modules/auth/api-keys.service.js')).ApiKeysService);
    const [one, two] = await Promise.all([keys.create('rl-lean', 'client'), keys.create('rl-nest', 'client')]);
    const burst = async (key: string): Promise<Awaited<ReturnType<typeof call>>> => {
      let last = await call({ messages: [] }, auth(key));
      for (let i = 0; i < 40 && last.status !== 429; i++) last = await call({ messages: [] }, auth(key));
      return last;
    };
    const lean = await burst(one.key);
    const nest = await viaNest(() => burst(two.key));
    expect(lean.status).toBe(429);
    // Retry-After counts down the window: the two bursts ran a moment apart.
    const wait = (a: typeof lean): number => Number(a.headers['retry-after']);
    expect(Math.abs(wait(lean) - wait(nest))).toBeLessThanOrEqual(2);
    expect(lean).toEqual({
      ...nest,
      requestId: lean.requestId,
      headers: { ...nest.headers, 'retry-after': lean.headers['retry-after'] },
    });
  });
});
