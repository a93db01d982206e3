import { DataSource } from 'typeorm';
import { TaskQueriesRepository, type TaskListFilter } from '../../src/modules/tasks/task-queries.repository.js';
import { TASK_STATES } from '../../src/modules/tasks/task.types.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

interface Page {
  tasks: { task_id: string }[];
  pagination: {
    total: number;
    limit: number;
    offset: number;
    has_more: boolean;
    next_cursor: string | null;
    total_capped: boolean;
  };
}

const SORTS = ['created_at', 'priority', 'started_at', 'completed_at'] as const;

/**
 * Task lists that never count the table (issue 25.3, docs/http-api.md "Lists"): keyset pages in
 * every sort, totals from the counters or a capped count, deep offsets, and plans that read only
 * the page.
 */
describe('task lists', () => {
  let t: TestApp;
  let client: Api;

  /**
   * 420 tasks of the default tenant in every state, with shared created_at (a batch commits with
   * one now()), every priority, and started_at/completed_at unset on a good share (NULLS LAST).
   */
  const seed = (n: number, from: number, type = 'prompt'): Promise<unknown> =>
    t.db.query(
      `INSERT INTO tasks (type, prompt, status, priority, created_at, started_at, completed_at, cancelled_at)
       SELECT $3, 'p' || g, s, (g % 4)::smallint, ts,
              CASE WHEN s = 'pending' OR (s = 'cancelled' AND g % 2 = 0) THEN NULL ELSE ts + (g % 7) * interval '1 s' END,
              CASE WHEN s IN ('completed', 'failed', 'timed_out') THEN ts + (g % 5) * interval '1 s' END,
              CASE WHEN s = 'cancelled' THEN ts END
         FROM (SELECT g, timestamptz '2026-01-01' + (g / 3) * interval '1 min' AS ts,
                      (ARRAY['pending','running','completed','completed','failed','cancelled','timed_out','dispatched'])[1 + g % 8] AS s
                 FROM generate_series($1::int, $2::int) g) x`,
      [from, from + n - 1, type],
    );

  const expected = async (sort: string, order: string, where = 'true'): Promise<string[]> =>
    (await t.db.query(`SELECT id FROM tasks WHERE ${where} ORDER BY ${sort} ${order} NULLS LAST, id ${order}`)).map(
      (r: { id: string }) => r.id,
    );

  const count = async (where: string): Promise<number> =>
    (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE ${where}`))[0].n;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
    await seed(420, 1);
  });
  afterAll(() => t.close());

  describe.each(SORTS.flatMap((s) => (['asc', 'desc'] as const).map((o) => [s, o] as const)))(
    'cursor walk by %s %s',
    (sort, order) => {
      it('returns every task exactly once, in order, while tasks are being added', async () => {
        const before = await expected(sort, order);
        const seen: string[] = [];
        let cursor: string | null = null;
        let added = 0;
        for (let pages = 0; pages < 200; pages++) {
          const q: string = `sort=${sort}&order=${order}&limit=17${cursor ? `&cursor=${cursor}` : ''}`;
          const res = await client.get<Page>(`/api/v1/tasks?${q}`);
          expect(res.status).toBe(200);
          seen.push(...res.body.data.tasks.map((x) => x.task_id));
          cursor = res.body.data.pagination.next_cursor;
          expect(res.body.data.pagination.has_more).toBe(cursor !== null);
          if (!cursor) break;
          // New work arrives during the walk (pending: no started_at, no completed_at).
          const r = await client.post('/api/v1/tasks', { prompt: `during ${sort} ${order} ${added++}` });
          expect(r.status).toBe(201);
        }
        expect(cursor).toBeNull();
        expect(new Set(seen).size).toBe(seen.length); // nothing twice
        const old = new Set(before);
        expect(seen.filter((id) => old.has(id))).toEqual(before); // every earlier task, in order
      });
    },
  );

  it('a bad cursor is a 400 naming cursor', async () => {
    const good = (await client.get<Page>('/api/v1/tasks?limit=2')).body.data.pagination.next_cursor;
    expect(good).toEqual(expect.any(String));
    const junk = Buffer.from('["created_at","desc","x","y"]').toString('base64url');
    for (const q of [
      'cursor=not%20base64!',
      'cursor=abc',
      `cursor=${junk}`,
      `cursor=${good}&sort=priority`, // another sort's cursor
      `cursor=${good}&order=asc`,
    ]) {
      const res = await client.get(`/api/v1/tasks?${q}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'cursor' } });
    }
    const both = await client.get(`/api/v1/tasks?cursor=${good}&offset=5`);
    expect(both.status).toBe(400);
    expect(both.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'offset' } });
  });

  it.each([
    ['', 'true'],
    ['status=completed', `status = 'completed'`],
    ['status=active', `status IN ('pending', 'dispatched', 'running')`],
    ['status=waiting,failed', `status IN ('pending', 'dispatched', 'failed')`],
    ['status=timed_out&priority=high,urgent', `status = 'timed_out' AND priority >= 2`],
  ])('totals for %s come from the counters and equal count(*)', async (q, where) => {
    const res = await client.get<Page>(`/api/v1/tasks?limit=5&${q}`);
    expect(res.status).toBe(200);
    expect(res.body.data.pagination).toMatchObject({ total: await count(where), total_capped: false });
  });

  it('other filters count up to 10,000 and say so past it', async () => {
    await seed(10_050, 100_000, 'bulk');
    const bulk = await client.get<Page>('/api/v1/tasks?type=bulk&limit=3');
    expect(bulk.body.data.pagination).toMatchObject({ total: 10_000, total_capped: true, has_more: true });
    const few = await client.get<Page>('/api/v1/tasks?type=bulk&status=failed&created_before=2026-01-01T10:00:00Z');
    const where = `type = 'bulk' AND status = 'failed' AND created_at < '2026-01-01T10:00:00Z'`;
    expect(few.body.data.pagination).toMatchObject({ total: await count(where), total_capped: false });
    expect(few.body.data.tasks.map((x) => x.task_id)).toEqual(
      (await expected('created_at', 'desc', where)).slice(0, 50),
    );
    // Status alone stays exact however many match.
    const all = await client.get<Page>('/api/v1/tasks?status=completed&limit=1');
    expect(all.body.data.pagination).toMatchObject({ total: await count(`status = 'completed'`), total_capped: false });
  });

  it.each([
    ['created_at', 'desc', 9_000],
    ['priority', 'asc', 5_003],
    ['started_at', 'asc', 250], // inside the rows with a start
    ['started_at', 'desc', 9_000], // past them, among the never started
    ['completed_at', 'asc', 10_460], // the last page
  ])('offset pages stay correct: %s %s at %d', async (sort, order, offset) => {
    const all = await expected(sort, order);
    const res = await client.get<Page>(`/api/v1/tasks?sort=${sort}&order=${order}&limit=20&offset=${offset}`);
    expect(res.status).toBe(200);
    expect(res.body.data.tasks.map((x) => x.task_id)).toEqual(all.slice(offset, offset + 20));
    expect(res.body.data.pagination.has_more).toBe(offset + 20 < all.length);
    expect(res.body.data.pagination.total).toBe(all.length);
  });

  it('a page reads only its rows: no Seq Scan, no count, no window over tasks', async () => {
    const db = t.app.get(DataSource);
    // Enough finished history that the planner's choices are the ones it makes at scale (with a
    // few hundred rows any plan is cheap, and it may sort a small state instead of reading it in order).
    await db.query(
      `INSERT INTO tasks (tenant_id, prompt, status, priority, created_at, started_at, completed_at)
       SELECT 'default', 'h' || g, (ARRAY['completed', 'failed', 'cancelled', 'timed_out'])[1 + g % 4], g % 4,
              timestamptz '2020-01-01' + g * interval '1 s', timestamptz '2020-01-01' + g * interval '1 s',
              CASE WHEN g % 4 < 2 THEN timestamptz '2020-01-01' + g * interval '2 s' END
         FROM generate_series(1, 20000) g`,
    );
    await db.query('ANALYZE tasks');
    const table = await count('true');
    const plans: unknown[] = [];
    class Explaining extends TaskQueriesRepository {
      protected override async read<T>(sql: string, params: unknown[]): Promise<T[]> {
        const [row] = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
        plans.push(row['QUERY PLAN'][0].Plan);
        return super.read<T>(sql, params);
      }
    }
    const repo = new Explaining(db);
    const base: TaskListFilter = {
      tenants: ['default'],
      states: [...TASK_STATES],
      sort: 'created_at',
      order: 'desc',
      limit: 20,
      offset: 0,
    };
    for (const sort of SORTS)
      for (const order of ['asc', 'desc'] as const) {
        const first = await repo.list({ ...base, sort, order });
        await repo.list({ ...base, sort, order, cursor: first.next ?? undefined });
        await repo.list({ ...base, sort, order, states: ['running'] });
      }
    const nodes = (p: Record<string, unknown>): Record<string, unknown>[] => [
      p,
      ...((p.Plans as Record<string, unknown>[] | undefined) ?? []).flatMap(nodes),
    ];
    expect(plans.length).toBeGreaterThanOrEqual(SORTS.length * 2 * 3); // a nullable sort may read its NULLS LAST part too
    for (const plan of plans) {
      const all = nodes(plan as Record<string, unknown>);
      const types = all.map((n) => n['Node Type']);
      expect(types).not.toContain('Seq Scan');
      expect(types).not.toContain('WindowAgg');
      expect(types).not.toContain('Aggregate');
      // Rows read from tasks: a few pages' worth, not the table.
      const read = all
        .filter((n) => n['Relation Name'] === 'tasks')
        .reduce((s, n) => s + Number(n['Actual Rows']) + Number(n['Rows Removed by Filter'] ?? 0), 0);
      expect(read).toBeLessThan(table / 10);
    }
    await db.query(`DELETE FROM tasks WHERE prompt LIKE 'h%' AND created_at < '2021-01-01'`);
  });

  it("a tenant's key lists its own tenant; a global admin's lists every tenant, totals alike", async () => {
    await t.db.query(`INSERT INTO tenants (id, name) VALUES ('other', 'other')`);
    await t.db.query(
      `INSERT INTO tasks (tenant_id, prompt, created_at) SELECT 'other', 'o' || g, timestamptz '2030-01-01' + g * interval '1 s'
         FROM generate_series(1, 5) g`,
    );
    const mine = await client.get<Page>('/api/v1/tasks?limit=3');
    expect(mine.body.data.pagination.total).toBe(await count(`tenant_id = 'default'`));
    const admin = apiClient(t, t.keys.admin);
    const every = await admin.get<Page>('/api/v1/tasks?limit=3');
    expect(every.body.data.pagination.total).toBe(await count('true'));
    const newest = await expected('created_at', 'desc');
    expect(every.body.data.tasks.map((x) => x.task_id)).toEqual(newest.slice(0, 3)); // the other tenant's, merged in
    expect(mine.body.data.tasks.map((x) => x.task_id)).toEqual(
      (await expected('created_at', 'desc', `tenant_id = 'default'`)).slice(0, 3),
    );
  });
});
