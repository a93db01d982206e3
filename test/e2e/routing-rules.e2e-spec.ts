import { apiClient, type Api, type ApiResponse } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface Rule {
  id: string;
  name: string;
  description: string | null;
  priority: number;
  enabled: boolean;
  conditions: { field: string; operator: string; value: unknown }[];
  target_strategy: string;
  target_tags: string[];
  target_service: string | null;
  created_at: string;
  updated_at: string;
}

const RULES = '/api/v1/routing/rules';
const MISSING = '00000000-0000-4000-8000-000000000000';

describe('routing rules API', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const put = async <T = Rule>(key: string, path: string, body: unknown): Promise<ApiResponse<T>> => {
    const res = await fetch(`${t.url}${path}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as ApiResponse<T>['body'] };
  };
  const create = (body: Record<string, unknown>) => admin.post<Rule>(RULES, { conditions: [], ...body });
  const evaluate = (ctx: Record<string, unknown>) => client.post<{ rule: Rule | null }>(`${RULES}/evaluate`, ctx);

  beforeAll(async () => {
    t = await startTestApp();
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    await truncate(t.db, 'routing_rules');
  });
  afterAll(() => t.close());

  it('creates, reads, updates in part and deletes a rule', async () => {
    const created = await create({
      name: 'vip-routing',
      priority: 10,
      conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
      target_strategy: 'least_connections',
      target_tags: ['high-performance'],
      enabled: true,
    });
    expect(created.status).toBe(201);
    expect(created.body.success).toBe(true);
    const rule = created.body.data;
    expect(rule).toMatchObject({
      name: 'vip-routing',
      description: null,
      priority: 10,
      enabled: true,
      conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
      target_strategy: 'least_connections',
      target_tags: ['high-performance'],
      target_service: null,
    });
    expect(rule.id).toMatch(/^[0-9a-f-]{36}$/);

    const got = await client.get<Rule>(`${RULES}/${rule.id}`);
    expect(got.status).toBe(200);
    expect(got.body.data).toEqual(rule);

    const updated = await put(t.keys.admin, `${RULES}/${rule.id}`, {
      priority: 20,
      description: 'VIP users',
      target_service: 'agent-a',
    });
    expect(updated.status).toBe(200);
    expect(updated.body.data).toMatchObject({
      name: 'vip-routing',
      priority: 20,
      description: 'VIP users',
      target_service: 'agent-a',
      target_tags: ['high-performance'],
    });
    expect(updated.body.data.conditions).toEqual(rule.conditions);
    const cleared = await put(t.keys.admin, `${RULES}/${rule.id}`, { description: null, target_service: null });
    expect(cleared.body.data).toMatchObject({ description: null, target_service: null, priority: 20 });
    expect(new Date(updated.body.data.updated_at).getTime()).toBeGreaterThanOrEqual(
      new Date(rule.updated_at).getTime(),
    );

    const deleted = await admin.delete<Rule>(`${RULES}/${rule.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data.id).toBe(rule.id);
    expect((await client.get(`${RULES}/${rule.id}`)).status).toBe(404);
  });

  it('applies defaults: priority 0, enabled, least_connections, no tags', async () => {
    const res = await create({ name: 'bare' });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      priority: 0,
      enabled: true,
      target_strategy: 'least_connections',
      target_tags: [],
      conditions: [],
    });
  });

  it('lists by priority, highest first, filters on enabled and pages', async () => {
    await create({ name: 'low', priority: 1 });
    await create({ name: 'high', priority: 50 });
    await create({ name: 'off', priority: 30, enabled: false });
    await create({ name: 'mid', priority: 10 });
    const all = await client.get<{ rules: Rule[]; pagination: Record<string, unknown> }>(RULES);
    expect(all.status).toBe(200);
    expect(all.body.data.rules.map((r) => r.name)).toEqual(['high', 'off', 'mid', 'low']);
    expect(all.body.data.pagination).toEqual({ total: 4, limit: 50, offset: 0, has_more: false });
    const enabled = await client.get<{ rules: Rule[] }>(`${RULES}?enabled=true`);
    expect(enabled.body.data.rules.map((r) => r.name)).toEqual(['high', 'mid', 'low']);
    const disabled = await client.get<{ rules: Rule[] }>(`${RULES}?enabled=false`);
    expect(disabled.body.data.rules.map((r) => r.name)).toEqual(['off']);
    const page = await client.get<{ rules: Rule[]; pagination: Record<string, unknown> }>(`${RULES}?limit=2&offset=1`);
    expect(page.body.data.rules.map((r) => r.name)).toEqual(['off', 'mid']);
    expect(page.body.data.pagination).toEqual({ total: 4, limit: 2, offset: 1, has_more: true });
    expect((await client.get(`${RULES}?enabled=yes`)).status).toBe(400);
  });

  it('evaluates by header: the highest-priority matching enabled rule wins', async () => {
    const vip = await create({
      name: 'vip',
      priority: 10,
      conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
      target_tags: ['high-performance'],
    });
    await create({
      name: 'vip-eu-off',
      priority: 100,
      enabled: false,
      conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
    });
    const eu = await create({
      name: 'vip-eu',
      priority: 20,
      conditions: [
        { field: 'header.x-user-tier', operator: 'equals', value: 'vip' },
        { field: 'header.x-region', operator: 'regex', value: '^eu-' },
      ],
    });
    const fallback = await create({ name: 'catch-all', priority: -1 });

    expect((await evaluate({ headers: { 'X-User-Tier': 'vip' } })).body.data.rule?.id).toBe(vip.body.data.id);
    expect((await evaluate({ headers: { 'x-user-tier': 'vip', 'x-region': 'eu-west' } })).body.data.rule?.id).toBe(
      eu.body.data.id,
    );
    expect((await evaluate({ headers: { 'x-user-tier': 'basic' } })).body.data.rule?.id).toBe(fallback.body.data.id);

    await admin.delete(`${RULES}/${fallback.body.data.id}`);
    const none = await evaluate({ headers: { 'x-user-tier': 'basic' } });
    expect(none.status).toBe(200);
    expect(none.body.data).toEqual({ rule: null });
  });

  it('evaluates tasks by priority and tags, and sees updates at once', async () => {
    const high = await create({
      name: 'high-tasks',
      priority: 5,
      conditions: [{ field: 'task.priority', operator: 'equals', value: 'high' }],
      target_tags: ['high-performance'],
    });
    const gpu = await create({
      name: 'gpu-tasks',
      priority: 3,
      conditions: [{ field: 'task.tags', operator: 'contains', value: 'gpu' }],
      target_strategy: 'round_robin',
    });
    const team = await create({
      name: 'ml-team',
      priority: 1,
      conditions: [{ field: 'task.metadata.team', operator: 'in', value: ['ml', 'ai'] }],
    });

    expect((await evaluate({ task: { priority: 'high', tags: ['gpu'] } })).body.data.rule?.id).toBe(high.body.data.id);
    expect((await evaluate({ task: { priority: 2 } })).body.data.rule?.id).toBe(high.body.data.id);
    expect((await evaluate({ task: { priority: 'low', tags: ['gpu'] } })).body.data.rule?.id).toBe(gpu.body.data.id);
    expect(
      (await evaluate({ task: { priority: 'low', tags: ['cpu'], metadata: { team: 'ai' } } })).body.data.rule?.id,
    ).toBe(team.body.data.id);
    expect((await evaluate({ task: { priority: 'low' } })).body.data.rule).toBeNull();

    await put(t.keys.admin, `${RULES}/${high.body.data.id}`, { enabled: false });
    expect((await evaluate({ task: { priority: 'high', tags: ['gpu'] } })).body.data.rule?.id).toBe(gpu.body.data.id);
    await put(t.keys.admin, `${RULES}/${gpu.body.data.id}`, {
      conditions: [{ field: 'task.tags', operator: 'contains', value: 'tpu' }],
    });
    expect((await evaluate({ task: { priority: 'high', tags: ['gpu'] } })).body.data.rule).toBeNull();
  });

  it('evaluates query and client_ip conditions', async () => {
    const r = await create({
      name: 'sessions',
      conditions: [
        { field: 'query.session_id', operator: 'exists', value: true },
        { field: 'client_ip', operator: 'regex', value: '^10\\.' },
      ],
      target_strategy: 'hash',
    });
    expect((await evaluate({ query: { session_id: 's1' }, client_ip: '10.1.2.3' })).body.data.rule?.id).toBe(
      r.body.data.id,
    );
    expect((await evaluate({ query: { session_id: 's1' }, client_ip: '192.168.1.1' })).body.data.rule).toBeNull();
    expect((await evaluate({ client_ip: '10.1.2.3' })).body.data.rule).toBeNull();
  });

  describe('bad inputs', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['null conditions', { conditions: null }, 'conditions'],
      [
        'unknown operator',
        { conditions: [{ field: 'header.a', operator: 'like', value: 'x' }] },
        'conditions[0].operator',
      ],
      ['bad field', { conditions: [{ field: 'body.a', operator: 'equals', value: 'x' }] }, 'conditions[0].field'],
      [
        'dangerous regex',
        {
          conditions: [
            { field: 'client_ip', operator: 'exists', value: true },
            { field: 'header.a', operator: 'regex', value: '(a+)+$' },
          ],
        },
        'conditions[1].value',
      ],
      [
        'invalid regex',
        { conditions: [{ field: 'header.a', operator: 'regex', value: '([a-z' }] },
        'conditions[0].value',
      ],
      [
        'regex too long',
        { conditions: [{ field: 'header.a', operator: 'regex', value: 'a'.repeat(201) }] },
        'conditions[0].value',
      ],
      [
        'in without an array',
        { conditions: [{ field: 'header.a', operator: 'in', value: 'x' }] },
        'conditions[0].value',
      ],
      [
        'exists without a boolean',
        { conditions: [{ field: 'header.a', operator: 'exists', value: 'yes' }] },
        'conditions[0].value',
      ],
      [
        'object value',
        { conditions: [{ field: 'header.a', operator: 'equals', value: { x: 1 } }] },
        'conditions[0].value',
      ],
      [
        'unknown condition property',
        { conditions: [{ field: 'header.a', operator: 'equals', value: 'x', extra: 1 }] },
        'conditions[0].extra',
      ],
      ['conditions not an array', { conditions: 'header.a=x' }, 'conditions'],
      ['unknown strategy', { target_strategy: 'fastest' }, 'target_strategy'],
      ['priority as a string', { priority: 'high' }, 'priority'],
      ['priority not an integer', { priority: 1.5 }, 'priority'],
      ['enabled as a string', { enabled: 'yes' }, 'enabled'],
      ['tags not strings', { target_tags: [1] }, 'target_tags'],
      ['empty name', { name: '' }, 'name'],
      ['unknown property', { colour: 'red' }, 'colour'],
    ])('%s → 400', async (_label, body, field) => {
      const res = await create({ name: 'bad', ...body });
      expect(res.status).toBe(400);
      expect(res.body.success).toBe(false);
      expect(res.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field } });
      expect((await client.get<{ rules: Rule[] }>(RULES)).body.data.rules).toHaveLength(0);
    });

    it('missing name and conditions → 400', async () => {
      const res = await admin.post(RULES, { priority: 1 });
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('INVALID_REQUEST');
    });

    it('duplicate name → 409 CONFLICT, on create and on rename', async () => {
      await create({ name: 'one' });
      const dup = await create({ name: 'one' });
      expect(dup.status).toBe(409);
      expect(dup.body.error).toMatchObject({ code: 'CONFLICT', details: { field: 'name' } });
      const two = await create({ name: 'two' });
      const rename = await put(t.keys.admin, `${RULES}/${two.body.data.id}`, { name: 'one' });
      expect(rename.status).toBe(409);
      expect(rename.body.error?.code).toBe('CONFLICT');
    });

    it('a bad update changes nothing', async () => {
      const r = await create({ name: 'keep', conditions: [{ field: 'header.a', operator: 'equals', value: 'x' }] });
      for (const field of ['name', 'priority', 'enabled', 'conditions', 'target_strategy', 'target_tags']) {
        const cleared = await put(t.keys.admin, `${RULES}/${r.body.data.id}`, { [field]: null });
        expect(cleared.status).toBe(400);
        expect(cleared.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field } });
      }
      const unknown = await put(t.keys.admin, `${RULES}/${r.body.data.id}`, { colour: 'red' });
      expect(unknown.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'colour' } });
      const res = await put(t.keys.admin, `${RULES}/${r.body.data.id}`, {
        priority: 9,
        conditions: [{ field: 'header.a', operator: 'regex', value: '(a*)*' }],
      });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'conditions[0].value' } });
      expect((await client.get<Rule>(`${RULES}/${r.body.data.id}`)).body.data).toEqual(r.body.data);
    });

    it('unknown id → 404 NOT_FOUND on get, update and delete', async () => {
      for (const res of [
        await client.get(`${RULES}/${MISSING}`),
        await put(t.keys.admin, `${RULES}/${MISSING}`, { priority: 1 }),
        await admin.delete(`${RULES}/${MISSING}`),
      ]) {
        expect(res.status).toBe(404);
        expect(res.body.error?.code).toBe('NOT_FOUND');
      }
    });

    it('non-UUID id → 400 naming id', async () => {
      const res = await client.get(`${RULES}/not-a-uuid`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'id' } });
      expect((await admin.delete(`${RULES}/123`)).status).toBe(400);
    });

    it('evaluate rejects wrong types', async () => {
      expect((await evaluate({ headers: 'x' })).status).toBe(400);
      expect((await evaluate({ task: [1] })).status).toBe(400);
      expect((await evaluate({ client_ip: 5 })).status).toBe(400);
      expect((await evaluate({ body: {} })).status).toBe(400);
    });
  });

  describe('roles', () => {
    it('clients and workers read and evaluate but cannot write', async () => {
      const r = await create({ name: 'admin-made' });
      const worker = apiClient(t, t.keys.worker);
      const denied = await client.post(RULES, { name: 'client-made', conditions: [] });
      expect(denied.status).toBe(403);
      expect(denied.body.error?.code).toBe('FORBIDDEN');
      expect((await worker.post(RULES, { name: 'worker-made', conditions: [] })).status).toBe(403);
      expect((await put(t.keys.client, `${RULES}/${r.body.data.id}`, { priority: 5 })).status).toBe(403);
      expect((await client.delete(`${RULES}/${r.body.data.id}`)).status).toBe(403);
      expect((await worker.get(RULES)).status).toBe(200);
      expect((await worker.post(`${RULES}/evaluate`, {})).status).toBe(200);
      expect((await client.get<Rule>(`${RULES}/${r.body.data.id}`)).body.data.priority).toBe(0);
    });

    it('no key → 401', async () => {
      const anon = apiClient(t, undefined);
      expect((await anon.get(RULES)).status).toBe(401);
      expect((await anon.post(RULES, { name: 'x', conditions: [] })).status).toBe(401);
    });
  });
});
