import { EventBus } from '../../src/common/events/event-bus.js';
import type { TaskRow } from '../../src/modules/tasks/task.types.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

interface BatchAnswer {
  total: number;
  created: number;
  failed: number;
  results: {
    index: number;
    success: boolean;
    task_id?: string;
    created?: boolean;
    error?: { code: string; message: string; details: Record<string, unknown> };
  }[];
}

/**
 * The batch route validates its items without the ValidationPipe's copy of the body and builds
 * the rows of its task.created events instead of parsing them: same answers, same rows.
 */
describe('POST /api/v1/tasks/batch: the same contract on its lean path', () => {
  let t: TestApp;
  let client: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
  });
  afterAll(() => t.close());

  // Each one bad on its own: the batch answers each item as the single route answers it.
  const bad: Record<string, unknown>[] = [
    {},
    { prompt: 42 },
    { prompt: 'x', work_directory: 'projects/mine' },
    { prompt: 'x', work_directory: '/a/../etc' },
    { prompt: 'x', priority: 'asap' },
    { prompt: 'x', tags: 'security' },
    { prompt: 'x', tags: ['ok', 7] },
    { prompt: 'x', tags: ['ok', ''] },
    { prompt: 'x', tags: Array.from({ length: 51 }, (_, i) => `t${i}`) },
    { prompt: 'x', required_tags: [''] },
    { prompt: 'x', max_retries: -1 },
    { prompt: 'x', max_retries: 101 },
    { prompt: 'x', timeout_seconds: '60' },
    { prompt: 'x', timeout_seconds: 1.5 },
    { prompt: 'x', run_at: 'tomorrow' },
    { prompt: 'x', run_at: '2026-02-30T10:00:00Z' },
    { prompt: 'x', data: [1, 2] },
    { prompt: 'x', metadata: 'm' },
    { prompt: 'x', owner: 'me' },
    { prompt: 'x', type: '' },
    { prompt: 'x', environment: 'e'.repeat(201) },
    { prompt: 'x', files: 'a.js' },
    { prompt: 'x', idempotency_key: '' },
    { prompt: 'x', target_node_id: 7 },
    { prompt: 'x', awaits_callback: '' },
    { prompt: null, data: { a: 1 } },
    { prompt: 1, tags: 2, priority: 3, owner: 4 },
  ];

  it('answers each bad item with the error the single route gives it, and inserts only the good ones', async () => {
    const good = [
      { prompt: 'plain' },
      { data: { nested: { b: 1, a: [1, 'x'] } } },
      {
        type: 'full',
        prompt: 'every field',
        data: { k: 'v' },
        priority: 'urgent',
        tags: ['a', 'b'],
        required_tags: ['gpu'],
        work_directory: '/w/x',
        environment: 'node',
        files: ['a.js', { path: 'b' }],
        timeout_seconds: 60,
        max_retries: 0,
        run_at: '2030-01-01T00:00:00Z',
        target_node_id: 'node-1',
        metadata: { m: 1 },
        idempotency_key: 'batch-lean-1',
      },
    ];
    const items = [...bad, ...good];
    const res = await client.post<BatchAnswer>('/api/v1/tasks/batch', { tasks: items });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ total: items.length, created: good.length, failed: bad.length });
    for (const [i, body] of bad.entries()) {
      const single = await client.post('/api/v1/tasks', body);
      expect(single.status).toBe(400);
      const item = res.body.data.results[i];
      expect({ i, ...item }).toEqual({
        i,
        index: i,
        success: false,
        error: {
          code: 'VALIDATION_ERROR',
          message: single.body.error?.message,
          details: single.body.error?.details,
        },
      });
    }
    const ids = res.body.data.results.slice(bad.length).map((r) => r.task_id);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[])`, [ids]);
    expect(rows[0].n).toBe(good.length);
  });

  it('refuses an item property named like an Object.prototype member (the ValidationPipe copy used to drop it)', async () => {
    const res = await client.post<BatchAnswer>('/api/v1/tasks/batch', { tasks: [{ prompt: 'x', valueOf: 1 }] });
    expect(res.status).toBe(201);
    expect(res.body.data.results[0]).toMatchObject({
      success: false,
      error: { code: 'VALIDATION_ERROR', details: { field: 'valueOf', message: 'property valueOf should not exist' } },
    });
  });

  it('refuses a body that is not a batch as the ValidationPipe does', async () => {
    for (const body of [{ tasks: 'x' }, { tasks: [], extra: 1 }, {}, [{ prompt: 'x' }]]) {
      const res = await client.post('/api/v1/tasks/batch', body);
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('VALIDATION_ERROR');
      expect(res.body.error?.details?.field).toEqual(expect.any(String));
    }
    const extra = await client.post('/api/v1/tasks/batch', { tasks: [], extra: 1 });
    expect(extra.body.error?.details?.field).toBe('extra');
  });

  it('strips prototype keys from the items as the ValidationPipe does', async () => {
    const raw = '{"tasks":[{"prompt":"p","metadata":{"__proto__":{"polluted":1},"ok":1},"__proto__":{"x":1}}]}';
    const res = await fetch(`${t.url}/api/v1/tasks/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.client}`, 'content-type': 'application/json' },
      body: raw,
    });
    const body = (await res.json()) as { data: BatchAnswer };
    expect(res.status).toBe(201);
    expect(body.data.created).toBe(1);
    const [row] = await t.db.query(`SELECT metadata FROM tasks WHERE id = $1`, [body.data.results[0].task_id]);
    expect(row.metadata).toEqual({ ok: 1 });
  });

  it('task.created carries, for each inserted item, the row the database holds', async () => {
    const heard: TaskRow[] = [];
    const off = t.app.get(EventBus).on('task.created', ({ task }) => heard.push(task));
    try {
      await client.post('/api/v1/tasks', { prompt: 'first', idempotency_key: 'batch-lean-dup' });
      heard.length = 0;
      const items = [
        { prompt: 'a' },
        { prompt: 'b', data: { z: 1, a: { y: [1, 2], b: null } }, metadata: { k: 'v' }, files: ['f'] },
        { prompt: 'c', run_at: '2031-05-06T07:08:09.123Z', priority: 'low', max_retries: 7, timeout_seconds: 9 },
        { prompt: 'd', run_at: '2020-01-01T00:00:00+02:00', required_tags: ['z', 'a', 'z'], tags: ['t'] },
        { prompt: 'e', target_node_id: 'n1', work_directory: '/w', environment: 'env', type: 'kind' },
        { prompt: 'dup', idempotency_key: 'batch-lean-dup' },
        { prompt: 'f', idempotency_key: 'batch-lean-new' },
      ];
      const res = await client.post<BatchAnswer>('/api/v1/tasks/batch', { tasks: items });
      expect(res.body.data).toMatchObject({ total: 7, created: 7, failed: 0 });
      expect(res.body.data.results.map((r) => r.created)).toEqual([true, true, true, true, true, false, true]);
      expect(heard).toHaveLength(6);
      const ids = res.body.data.results.filter((r) => r.created).map((r) => r.task_id);
      expect(heard.map((r) => r.id)).toEqual(ids);
      const rows: (TaskRow & { tag_key?: string })[] = await t.db.query(
        `SELECT * FROM tasks WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      const byId = new Map(rows.map(({ tag_key: _tagKey, ...r }) => [r.id, r]));
      // tag_key (a generated column the dispatcher reads) is in a database row, not in every event's.
      for (const { tag_key: _key, ...row } of heard as (TaskRow & { tag_key?: string })[])
        expect(row).toEqual(byId.get(row.id));
    } finally {
      off();
    }
  });
});
