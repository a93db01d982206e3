import { jest } from '@jest/globals';
import { ValidationPipe } from '@nestjs/common';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

// POST /api/v1/tasks is a hot route (src/common/hot-routes.ts) in front of Nest's. Each case is
// sent through it, then through Nest's route (the hot layer taken out of the Express stack for
// that call), and the two answers must match: status, body (less ids and times), the headers a
// client reads, and the row written. A drift between the two paths fails here.
describe('POST /api/v1/tasks: the hot route answers as the Nest route does', () => {
  let t: TestApp;

  interface Layer {
    route?: { path?: string; stack?: { handle: { name?: string } }[] };
  }
  const stack = (): Layer[] => (t.app.getHttpAdapter().getInstance() as { router: { stack: Layer[] } }).router.stack;
  const isHot = (l: Layer): boolean =>
    l.route?.path === '/api/v1/tasks' && l.route.stack?.some((s) => s.handle.name === 'hotRoute') === true;

  async function viaNest<T>(call: () => Promise<T>): Promise<T> {
    const layers = stack();
    const at = layers.findIndex(isHot);
    const [layer] = layers.splice(at, 1);
    try {
      return await call();
    } finally {
      layers.splice(at, 0, layer);
    }
  }

  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_MAX: '30' });
  });
  afterAll(() => t.close());
  beforeEach(() => truncate(t.db, 'task_events, tasks'));

  const READ = [
    'content-type',
    'cache-control',
    'x-ratelimit-limit',
    'retry-after',
    'vary',
    'access-control-expose-headers',
    'x-content-type-options',
    'x-frame-options',
    'strict-transport-security',
  ];
  const normal = (text: string): string =>
    text
      .replace(/"(timestamp|created_at|updated_at|run_at|request_id|trace_id)":("[^"]*"|null)/g, '"$1":"*"')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '*');

  async function call(
    body: unknown,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string | null>; body: string; requestId: string | null }> {
    const r = await fetch(`${t.url}/api/v1/tasks`, {
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
  const auth = (key: string, more: Record<string, string> = {}): Record<string, string> => ({
    authorization: `Bearer ${key}`,
    ...more,
  });

  it('is mounted in front of the Nest route', () => {
    const layers = stack();
    const hot = layers.findIndex(isHot);
    const nest = layers.findIndex((l) => l.route?.path === '/api/v1/tasks' && !isHot(l));
    expect(hot).toBeGreaterThanOrEqual(0);
    expect(nest).toBeGreaterThan(hot);
  });

  it.each<[string, () => unknown, () => Record<string, string>, number]>([
    [
      'a task: 201 in the envelope',
      () => ({ prompt: 'hello', priority: 'high', tags: ['a'] }),
      () => auth(t.keys.client),
      201,
    ],
    [
      'a task with data and metadata: 201',
      () => ({ type: 'x', data: { n: 1 }, metadata: { m: 'v' } }),
      () => auth(t.keys.admin),
      201,
    ],
    ['no key: 401', () => ({ prompt: 'hello' }), () => ({}), 401],
    ['an unknown key: 401', () => ({ prompt: 'hello' }), () => auth('th_nope'), 401],
    ['a worker key: 403', () => ({ prompt: 'hello' }), () => auth(t.keys.worker), 403],
    ['neither prompt nor data: 400 naming the field', () => ({ priority: 'high' }), () => auth(t.keys.client), 400],
    ['an unknown property: 400', () => ({ prompt: 'x', nope: 1 }), () => auth(t.keys.client), 400],
    ['a bad priority: 400', () => ({ prompt: 'x', priority: 'whenever' }), () => auth(t.keys.client), 400],
    ['a body that is not JSON: 400', () => '{"prompt": ', () => auth(t.keys.client), 400],
    ['an array body: 400', () => [{ prompt: 'x' }], () => auth(t.keys.client), 400],
    [
      'an Idempotency-Key too long: 400 naming the header',
      () => ({ prompt: 'x' }),
      () => auth(t.keys.client, { 'idempotency-key': 'k'.repeat(201) }),
      400,
    ],
    [
      "another tenant's X-Tenant-Id: 404",
      () => ({ prompt: 'x' }),
      () => auth(t.keys.client, { 'x-tenant-id': 'someone-else' }),
      404,
    ],
  ])('%s', async (_what, body, headers, status) => {
    const hot = await call(body(), headers());
    const nest = await viaNest(() => call(body(), headers()));
    expect(hot.status).toBe(status);
    expect(hot).toEqual({ ...nest, requestId: hot.requestId });
    expect(hot.requestId).toMatch(/.+/);
  });

  it('answers a submission with its length and no ETag (nobody revalidates the answer to a POST)', async () => {
    const r = await fetch(`${t.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth(t.keys.client) },
      body: JSON.stringify({ prompt: 'no tag' }),
    });
    const text = await r.text();
    expect(r.status).toBe(201);
    expect(r.headers.get('etag')).toBeNull();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it("a valid submission skips the pipe's copy and validation (the compiled check passed it); a bad one still gets the pipe's answer", async () => {
    const transform = jest.spyOn(ValidationPipe.prototype, 'transform');
    try {
      const ok = await call(
        { prompt: 'fast', priority: 'high', tags: ['a'], metadata: { k: [1, 2] } },
        auth(t.keys.client),
      );
      expect(ok.status).toBe(201);
      expect(transform).not.toHaveBeenCalled();
      const bad = await call({ prompt: 'fast', priority: 'soon' }, auth(t.keys.client));
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body)).toMatchObject({
        error: { code: 'VALIDATION_ERROR', details: { field: 'priority' } },
      });
      expect(transform).toHaveBeenCalledTimes(1);
    } finally {
      transform.mockRestore();
    }
  });

  it('the same Idempotency-Key answers the first task with 200 on both paths', async () => {
    const first = await call({ prompt: 'once' }, auth(t.keys.client, { 'idempotency-key': 'same-key' }));
    const hot = await call({ prompt: 'once' }, auth(t.keys.client, { 'idempotency-key': 'same-key' }));
    const nest = await viaNest(() => call({ prompt: 'once' }, auth(t.keys.client, { 'idempotency-key': 'same-key' })));
    expect([first.status, hot.status, nest.status]).toEqual([201, 200, 200]);
    expect(hot.body).toBe(nest.body);
    const [{ n }] = (await t.db.query(`SELECT count(*)::int AS n FROM tasks`)) as { n: number }[];
    expect(n).toBe(1);
  });

  it('writes the same row and events on both paths', async () => {
    const body = { prompt: 'row', priority: 'urgent', tags: ['t'], metadata: { k: 1 } };
    const hot = JSON.parse((await call(body, auth(t.keys.client))).body) as { data: { task_id: string } };
    await viaNest(() => call(body, auth(t.keys.client)));
    const rows = (await t.db.query(
      `SELECT tenant_id, type, prompt, priority, tags, metadata, status, (SELECT array_agg(type ORDER BY id) FROM task_events e WHERE e.task_id = t.id) AS events
       FROM tasks t ORDER BY created_at`,
    )) as Record<string, unknown>[];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual(rows[1]);
    expect(hot.data.task_id).toBeDefined();
  });

  it('counts against the rate limit, and refuses past it in the same shape', async () => {
    const keys = t.app.get((await import('../../src/modules/auth/api-keys.service.js')).ApiKeysService);
    const [one, two] = await Promise.all([keys.create('rl-hot', 'client'), keys.create('rl-nest', 'client')]);
    const burst = async (key: string): Promise<Awaited<ReturnType<typeof call>>> => {
      let last = await call({ nope: 1 }, auth(key));
      for (let i = 0; i < 40 && last.status !== 429; i++) last = await call({ nope: 1 }, auth(key));
      return last;
    };
    const hot = await burst(one.key);
    const nest = await viaNest(() => burst(two.key));
    expect(hot.status).toBe(429);
    const wait = (a: typeof hot): number => Number(a.headers['retry-after']);
    expect(Math.abs(wait(hot) - wait(nest))).toBeLessThanOrEqual(2);
    // The two bursts end in different seconds: the body's seconds-to-wait may differ by one, like the header's.
    const seconds = (a: typeof hot): number => Number(/"retry_after_seconds":(\d+)/.exec(a.body)?.[1]);
    expect(Math.abs(seconds(hot) - seconds(nest))).toBeLessThanOrEqual(2);
    const same = (a: typeof hot): string => a.body.replace(/"retry_after_seconds":\d+/, '"retry_after_seconds":"*"');
    expect({ ...hot, body: same(hot) }).toEqual({
      ...nest,
      body: same(nest),
      requestId: hot.requestId,
      headers: { ...nest.headers, 'retry-after': hot.headers['retry-after'] },
    });
  });
});
