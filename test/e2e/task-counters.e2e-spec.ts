import pg from 'pg';
import { apiClient, type Api, type Task } from '../support/api.js';
import { suiteDatabaseUrl } from '../support/test-database.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * Issue 25.2: counts per tenant, state and priority come from counters kept in the transaction
 * of every change (migration 1765700000000-TaskCounters), and equal `count(*)` at every moment —
 * folded or not, with folds racing each other and the workload.
 */
const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;

type Key = string;
const key = (tenant: string, status: string, priority: number): Key => `${tenant}/${status}/${priority}`;

describe('task counters (issue 25)', () => {
  let t: TestApp;
  let admin: Api;
  /** A superuser connection of its own (no row-level security): the truth and a second folder. */
  let raw: pg.Client;
  const TENANT = `counted-${process.pid}`;

  beforeAll(async () => {
    t = await startTestApp({ SWEEP_INTERVAL_MS: '600000' });
    admin = apiClient(t, t.keys.admin);
    raw = new pg.Client({ connectionString: await suiteDatabaseUrl() });
    await raw.connect();
  });
  afterAll(async () => {
    await raw.end();
    await t.close();
  });
  beforeEach(async () => {
    await truncate(t.db, 'task_events, tasks');
  });

  const truth = async (): Promise<Map<Key, number>> => {
    const { rows } = await raw.query<{ tenant_id: string; status: string; priority: number; n: number }>(
      `SELECT tenant_id, status, priority, count(*)::int AS n FROM tasks GROUP BY 1, 2, 3`,
    );
    return new Map(rows.map((r) => [key(r.tenant_id, r.status, r.priority), r.n]));
  };
  const counters = async (): Promise<Map<Key, number>> => {
    const { rows } = await raw.query<{ tenant_id: string; status: string; priority: number; n: number }>(
      `SELECT tenant_id, status, priority, sum(n)::int AS n
         FROM (SELECT tenant_id, status, priority, n FROM task_counts
               UNION ALL SELECT tenant_id, status, priority, n FROM task_count_deltas) c
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0`,
    );
    return new Map(rows.map((r) => [key(r.tenant_id, r.status, r.priority), r.n]));
  };
  const fold = async (): Promise<void> => void (await raw.query(`SELECT taskhub_fold_task_counts()`));
  const sorted = (m: Map<Key, number>): [Key, number][] => [...m].sort(([a], [b]) => a.localeCompare(b));

  it('equal count(*) per tenant, state and priority after a concurrent mixed workload, while folds race it', async () => {
    expect((await admin.post('/api/v1/tenants', { id: TENANT, name: TENANT })).status).toBeLessThan(300);
    const as = (tenant: string): Record<string, string> => (tenant === 'default' ? {} : { 'X-Tenant-Id': tenant });

    // Two folders racing each other and the workload: a second connection and the hub's own.
    let folding = true;
    const folder2 = new pg.Client({ connectionString: await suiteDatabaseUrl() });
    await folder2.connect();
    const folders = [raw, folder2].map(async (c) => {
      while (folding) {
        await c.query(`SELECT taskhub_fold_task_counts()`);
        await new Promise((r) => setTimeout(r, 3));
      }
    });

    const errors: string[] = [];
    const expectOk = (what: string, status: number): void => {
      if (status >= 500) errors.push(`${what}: ${status}`);
    };
    const work = async (tenant: string): Promise<void> => {
      const batch = await admin.post<{ results: { task_id: string }[] }>(
        '/api/v1/tasks/batch',
        {
          tasks: Array.from({ length: 150 }, (_, i) => ({
            prompt: `t${i}`,
            work_directory: `/w/${tenant}`,
            priority: PRIORITIES[i % 4],
            max_retries: i % 3,
          })),
        },
        as(tenant),
      );
      expect(batch.status).toBe(201);
      const ids = batch.body.data.results.map((x) => x.task_id);
      // Clients cancel some while workers run the rest: complete, fail (retried or not), or hold.
      const cancels = ids
        .filter((_, i) => i % 7 === 0)
        .map(async (id) => expectOk('cancel', (await admin.post(`/api/v1/tasks/${id}/cancel`, {}, as(tenant))).status));
      const workers = Array.from({ length: 6 }, async (_, w) => {
        for (let n = 0; ; n++) {
          const r = await admin.get<Task | null>(
            `/api/v1/tasks/next?work_path=/w/${tenant}&worker_id=w${w}`,
            as(tenant),
          );
          expectOk('next', r.status);
          const task = r.body.data;
          if (!task) return;
          const body = { worker_id: `w${w}`, attempt: task.attempt };
          const roll = (n * 7 + w) % 10;
          if (roll < 6)
            expectOk(
              'complete',
              (
                await admin.post(
                  `/api/v1/tasks/${task.task_id}/complete`,
                  { ...body, result: { status: 'success', output: 'ok' } },
                  as(tenant),
                )
              ).status,
            );
          else if (roll < 9)
            expectOk(
              'fail',
              (
                await admin.post(
                  `/api/v1/tasks/${task.task_id}/fail`,
                  { ...body, error: 'boom', retryable: roll < 8 },
                  as(tenant),
                )
              ).status,
            );
          // roll 9: left running
        }
      });
      await Promise.all([...cancels, ...workers]);
      // Finished ones re-queued by hand, then their priority raised by a reply.
      const { rows } = await raw.query<{ id: string }>(
        `SELECT id FROM tasks WHERE tenant_id = $1 AND status IN ('failed', 'cancelled') LIMIT 10`,
        [tenant],
      );
      await Promise.all(
        rows.map(async (r) =>
          expectOk('retry', (await admin.post(`/api/v1/tasks/${r.id}/retry`, { force: true }, as(tenant))).status),
        ),
      );
    };
    try {
      await Promise.all([work('default'), work(TENANT)]);
    } finally {
      folding = false;
      await Promise.all(folders);
      await folder2.end();
    }

    expect(errors).toEqual([]);
    const expected = await truth();
    // Several states and both tenants are in play, so the comparison means something.
    expect(new Set([...expected.keys()].map((k) => k.split('/')[1])).size).toBeGreaterThanOrEqual(4);
    expect(new Set([...expected.keys()].map((k) => k.split('/')[0]))).toEqual(new Set(['default', TENANT]));
    expect(sorted(await counters())).toEqual(sorted(expected));
    await fold();
    const { rows: left } = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_count_deltas`);
    expect(left[0].n).toBe(0);
    expect(sorted(await counters())).toEqual(sorted(expected));
  }, 120_000);

  it('statistics, /status and a tenant-scoped read show the counters, each tenant only its own', async () => {
    const other = `${TENANT}-b`;
    await admin.post('/api/v1/tenants', { id: other, name: other });
    await admin.post('/api/v1/tasks/batch', { tasks: Array.from({ length: 5 }, () => ({ prompt: 'p' })) });
    await admin.post(
      '/api/v1/tasks/batch',
      { tasks: Array.from({ length: 3 }, () => ({ prompt: 'p', priority: 'urgent' })) },
      { 'X-Tenant-Id': other },
    );
    const { rows: one } = await raw.query<{ id: string }>(`SELECT id FROM tasks WHERE tenant_id = 'default' LIMIT 1`);
    expect((await admin.post(`/api/v1/tasks/${one[0].id}/cancel`, {})).status).toBe(200);

    type Stats = { overview: Record<string, number>; priority_distribution: Record<string, number> };
    const mine = await admin.get<Stats>('/api/v1/statistics', { 'X-Tenant-Id': other });
    const everyone = await admin.get<Stats>('/api/v1/statistics');
    const status = await admin.get<{ tasks: Record<string, number> }>('/status');
    const truthAll = await truth();
    const sumOf = (pred: (k: Key) => boolean): number =>
      [...truthAll].filter(([k]) => pred(k)).reduce((a, [, n]) => a + n, 0);
    expect(mine.status).toBe(200);
    expect(mine.body.data.overview).toMatchObject({ total_tasks: 3, active_tasks: 3, cancelled_tasks: 0 });
    expect(mine.body.data.priority_distribution).toEqual({ low: 0, medium: 0, high: 0, urgent: 3 });
    expect(everyone.body.data.overview).toMatchObject({
      total_tasks: sumOf(() => true),
      cancelled_tasks: sumOf((k) => k.includes('/cancelled/')),
    });
    expect(sumOf(() => true)).toBe(8);
    expect(status.body.data.tasks).toEqual({
      total: 8,
      pending: sumOf((k) => k.includes('/pending/') || k.includes('/dispatched/')),
      running: sumOf((k) => k.includes('/running/')),
      completed: 0,
      failed: 0,
      cancelled: 1,
    });
  });

  it('the finish series counts each finish in its minute; a delete subtracts; a truncate empties them', async () => {
    const batch = await admin.post<{ results: { task_id: string }[] }>('/api/v1/tasks/batch', {
      tasks: Array.from({ length: 6 }, () => ({ prompt: 'p' })),
    });
    const ids = batch.body.data.results.map((x) => x.task_id);
    for (const id of ids.slice(0, 4)) await admin.post(`/api/v1/tasks/${id}/cancel`, {});
    await fold();
    const series = await admin.get<{ time_series: { cancelled: number }[] }>(
      '/api/v1/statistics?period=1h&interval=minute',
    );
    expect(series.body.data.time_series.length).toBeGreaterThanOrEqual(60);
    expect(series.body.data.time_series.reduce((a, p) => a + p.cancelled, 0)).toBe(4);
    const { rows: minutes } = await raw.query<{ n: number }>(
      `SELECT sum(cancelled)::int AS n FROM task_finish_minutes`,
    );
    expect(minutes[0].n).toBe(4);

    await raw.query(`DELETE FROM tasks WHERE id = ANY($1::uuid[])`, [ids.slice(0, 2)]);
    expect(sorted(await counters())).toEqual(sorted(await truth()));
    // The history of what finished stays: the series is not the current rows.
    const { rows: still } = await raw.query<{ n: number }>(`SELECT sum(cancelled)::int AS n FROM task_finish_minutes`);
    expect(still[0].n).toBe(4);

    await truncate(t.db, 'task_events, tasks');
    expect((await counters()).size).toBe(0);
    const { rows: gone } = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_finish_minutes`);
    expect(gone[0].n).toBe(0);
  });
});
