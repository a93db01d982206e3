import type { DataSource } from 'typeorm';
import { EventBus } from '../../src/common/events/event-bus.js';
import { RetentionCleaner } from '../../src/modules/retention/retention-cleaner.service.js';
import { withRetentionLock } from '../../src/modules/retention/retention-lock.js';
import { RetentionMetrics } from '../../src/modules/retention/retention-metrics.js';
import { type Api, apiClient } from '../support/api.js';
import { SeedDevice, sleep, submitTasks } from '../support/seed-devices.js';
import { counterMismatches } from '../support/task-counts.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Retention (docs/retention.md): finished tasks and their events go after an age or past a
 * count, per tenant; nothing unfinished or waited on goes; every other table that grows has
 * its bound; and a cleaner looping with a tiny age next to live dispatch loses nothing.
 */

const DAY = 86_400;

interface Seed {
  tenant?: string;
  status: string;
  /** Seconds since it finished (completed_at, or cancelled_at when cancelled); null: unfinished. */
  finishedAgo: number | null;
  createdAgo?: number;
  awaits?: string;
  events?: number;
}

/** A task row as the database holds it, written directly (as old as the test needs). */
async function seedTask(db: DataSource, s: Seed): Promise<string> {
  const created = s.createdAgo ?? (s.finishedAgo ?? 0) + 60;
  const cancelled = s.status === 'cancelled';
  const rows: { id: string }[] = await db.query(
    `INSERT INTO tasks (tenant_id, status, created_at, updated_at, completed_at, cancelled_at, awaits_callback)
     VALUES ($1, $2, now() - make_interval(secs => $3), now(),
             CASE WHEN $4::float8 IS NULL OR $5 THEN NULL ELSE now() - make_interval(secs => $4::float8) END,
             CASE WHEN $5 THEN now() - make_interval(secs => $4::float8) END, $6)
     RETURNING id`,
    [s.tenant ?? 'default', s.status, created, s.finishedAgo, cancelled, s.awaits ?? null],
  );
  const id = rows[0].id;
  if (s.events)
    await db.query(
      `INSERT INTO task_events (task_id, type, message, tenant_id)
       SELECT $1, 'log', 'line ' || g, $2 FROM generate_series(1, $3) g`,
      [id, s.tenant ?? 'default', s.events],
    );
  return id;
}

async function existing(db: DataSource, ids: string[]): Promise<Set<string>> {
  const rows: { id: string }[] = await db.query(`SELECT id FROM tasks WHERE id = ANY($1::uuid[])`, [ids]);
  return new Set(rows.map((r) => r.id));
}

async function eventsOf(db: DataSource, ids: string[]): Promise<number> {
  const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[])`, [
    ids,
  ])) as { n: number }[];
  return n;
}

async function count(db: DataSource, sql: string, params: unknown[] = []): Promise<number> {
  const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM ${sql}`, params)) as { n: number }[];
  return n;
}

describe('retention', () => {
  let t: TestApp;
  let admin: Api;
  let cleaner: RetentionCleaner;

  const setConfig = async (values: Record<string, unknown>): Promise<void> => {
    const res = await admin.patch('/v1/config', values);
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    // No automatic pass: each test runs one when it wants.
    t = await startTestApp({ RETENTION_INTERVAL_MS: '0' });
    admin = apiClient(t, t.keys.admin);
    cleaner = t.app.get(RetentionCleaner);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  afterEach(async () => {
    for (const key of [
      'TASK_RETENTION',
      'TASK_RETENTION_MAX_FINISHED',
      'TASK_RETENTION_GRACE',
      'TASK_EVENTS_MAX_PER_TASK',
      'NODE_LOG_RETENTION_LINES',
      'SERVICE_HEALTH_HISTORY',
    ])
      await admin.delete(`/v1/config/${key}`);
    await t.db.query(`DELETE FROM tasks`);
  });

  it('removes finished tasks past the age with their events, keeps recent and unfinished ones of any age', async () => {
    const old = [
      await seedTask(t.db, { status: 'completed', finishedAgo: 8 * DAY, events: 3 }),
      await seedTask(t.db, { status: 'failed', finishedAgo: 8 * DAY, events: 2 }),
      await seedTask(t.db, { status: 'cancelled', finishedAgo: 8 * DAY, events: 1 }),
      await seedTask(t.db, { status: 'timed_out', finishedAgo: 8 * DAY, events: 4 }),
    ];
    const kept = [
      await seedTask(t.db, { status: 'completed', finishedAgo: 6 * DAY, events: 2 }),
      await seedTask(t.db, { status: 'failed', finishedAgo: 3600 }),
      await seedTask(t.db, { status: 'pending', finishedAgo: null, createdAgo: 30 * DAY, events: 1 }),
      await seedTask(t.db, { status: 'dispatched', finishedAgo: null, createdAgo: 30 * DAY }),
      await seedTask(t.db, { status: 'running', finishedAgo: null, createdAgo: 30 * DAY, events: 5 }),
      // Awaiting a plugin callback: running, whatever its age.
      await seedTask(t.db, { status: 'running', finishedAgo: null, createdAgo: 30 * DAY, awaits: 'p' }),
    ];
    const before = await t.app.get(RetentionMetrics).deleted.get();
    const removed = await cleaner.runOnce();
    expect(removed).toMatchObject({ tasks: 4, task_events: 10 });
    expect(await existing(t.db, old)).toEqual(new Set());
    expect(await eventsOf(t.db, old)).toBe(0);
    expect(await existing(t.db, kept)).toEqual(new Set(kept));
    expect(await eventsOf(t.db, kept)).toBe(8);
    // The task counters (docs/database.md) follow the removal exactly.
    expect(await counterMismatches(t.db)).toEqual({});

    const by = (m: typeof before, table: string): number => m.values.find((v) => v.labels.table === table)?.value ?? 0;
    const after = await t.app.get(RetentionMetrics).deleted.get();
    expect(by(after, 'tasks') - by(before, 'tasks')).toBe(4);
    expect(by(after, 'task_events') - by(before, 'task_events')).toBe(10);
    const metrics = await fetch(`${t.url}/metrics?format=prometheus`, {
      headers: { Authorization: `Bearer ${t.keys.admin}` },
    });
    expect(await metrics.text()).toMatch(/taskhub_retention_deleted_total\{table="tasks"\} \d+/);
  });

  it('follows TASK_RETENTION changed at run time', async () => {
    const id = await seedTask(t.db, { status: 'completed', finishedAgo: 2 * 3600 });
    await cleaner.runOnce();
    expect((await existing(t.db, [id])).size).toBe(1);
    await setConfig({ TASK_RETENTION: '1h' });
    await cleaner.runOnce();
    expect((await existing(t.db, [id])).size).toBe(0);
  });

  it("applies a tenant's own limits.retention (age and count) over the hub's", async () => {
    for (const [id, limits] of [
      ['short', { retention: { age: '1h' } }],
      ['forever', { retention: { age: 'off', max_finished: 0 } }],
      ['few', { retention: { max_finished: 2 } }],
    ] as const) {
      const res = await admin.post('/api/v1/tenants', { id, name: id, limits });
      expect(res.status).toBe(201);
    }
    const bad = await admin.patch('/api/v1/tenants/short', { limits: { retention: { age: 'soon' } } });
    expect(bad.status).toBe(400);

    const shortOld = await seedTask(t.db, { tenant: 'short', status: 'completed', finishedAgo: 2 * 3600 });
    const shortNew = await seedTask(t.db, { tenant: 'short', status: 'completed', finishedAgo: 1800 });
    const defaultSame = await seedTask(t.db, { status: 'completed', finishedAgo: 2 * 3600 });
    const forever = await seedTask(t.db, { tenant: 'forever', status: 'completed', finishedAgo: 400 * DAY });
    const few = [];
    for (let i = 5; i >= 1; i--)
      few.push(await seedTask(t.db, { tenant: 'few', status: 'failed', finishedAgo: i * 600 }));

    await cleaner.runOnce();
    expect(await existing(t.db, [shortOld, shortNew, defaultSame, forever, ...few])).toEqual(
      new Set([shortNew, defaultSame, forever, few[3], few[4]]),
    );
    // Changed at run time: read at the next pass.
    expect((await admin.patch('/api/v1/tenants/forever', { limits: { retention: { age: '1d' } } })).status).toBe(200);
    await cleaner.runOnce();
    expect((await existing(t.db, [forever])).size).toBe(0);
  });

  it('keeps at most TASK_RETENTION_MAX_FINISHED finished tasks per tenant, the newest', async () => {
    await setConfig({ TASK_RETENTION_MAX_FINISHED: 3 });
    const finished = [];
    for (let i = 6; i >= 1; i--)
      finished.push(await seedTask(t.db, { status: 'completed', finishedAgo: i * 600, events: 1 }));
    // Past the count but inside the grace (2 min): kept until the grace has passed.
    const fresh = await seedTask(t.db, { status: 'completed', finishedAgo: 10 });
    const pending = await seedTask(t.db, { status: 'pending', finishedAgo: null, createdAgo: DAY });
    await cleaner.runOnce();
    expect(await existing(t.db, [...finished, fresh, pending])).toEqual(
      new Set([finished[4], finished[5], fresh, pending]),
    );
    expect(await eventsOf(t.db, finished)).toBe(2);
  });

  it('never removes a task someone waits on: a wait_seconds poll, or a plugin that may still deliver', async () => {
    await setConfig({ TASK_RETENTION: '1s' });
    // Finished by "another hub" (a direct update: no event here), a poll of this hub open on it.
    const polled = await seedTask(t.db, { status: 'running', finishedAgo: null, createdAgo: 600 });
    const poll = fetch(`${t.url}/api/v1/tasks/${polled}?wait_seconds=10`, {
      headers: { Authorization: `Bearer ${t.keys.admin}` },
    });
    await sleep(300);
    await t.db.query(`UPDATE tasks SET status = 'completed', completed_at = now() WHERE id = $1`, [polled]);
    await sleep(1200);
    // Inside the grace: kept, though past TASK_RETENTION.
    await cleaner.runOnce();
    expect((await existing(t.db, [polled])).size).toBe(1);
    const answer = (await (await poll).json()) as { data: { status: string } };
    expect(answer.data.status).toBe('completed');

    // No grace at all: the waits of this hub still hold their tasks.
    await setConfig({ TASK_RETENTION_GRACE: '0' });
    const held = await seedTask(t.db, { status: 'running', finishedAgo: null, createdAgo: 600 });
    const poll2 = fetch(`${t.url}/api/v1/tasks/${held}?wait_seconds=10`, {
      headers: { Authorization: `Bearer ${t.keys.admin}` },
    });
    await sleep(300);
    await t.db.query(`UPDATE tasks SET status = 'completed', completed_at = now() - interval '1 day' WHERE id = $1`, [
      held,
    ]);
    await cleaner.runOnce();
    expect((await existing(t.db, [held])).size).toBe(1);
    expect(((await (await poll2).json()) as { data: { status: string } }).data.status).toBe('completed');
    await cleaner.runOnce();
    expect((await existing(t.db, [held])).size).toBe(0);

    // A task that awaited a plugin stays as long as the plugin's deliveries are remembered (24 h).
    const awaited = await seedTask(t.db, { status: 'completed', finishedAgo: 3600, awaits: 'p' });
    const awaitedLong = await seedTask(t.db, { status: 'failed', finishedAgo: 25 * 3600, awaits: 'p' });
    await cleaner.runOnce();
    expect(await existing(t.db, [awaited, awaitedLong])).toEqual(new Set([awaited]));
  });

  it('caps the events of a task (TASK_EVENTS_MAX_PER_TASK), newest kept', async () => {
    await setConfig({ TASK_EVENTS_MAX_PER_TASK: 10 });
    const chatty = await seedTask(t.db, { status: 'running', finishedAgo: null, events: 25 });
    const quiet = await seedTask(t.db, { status: 'running', finishedAgo: null, events: 4 });
    await cleaner.runOnce();
    expect(await eventsOf(t.db, [chatty])).toBe(10);
    expect(await eventsOf(t.db, [quiet])).toBe(4);
    const [{ first }] = (await t.db.query(`SELECT min(message) AS first FROM task_events WHERE task_id = $1`, [
      chatty,
    ])) as { first: string }[];
    expect(first).toBe('line 16');
    // New events past the cap are trimmed at the next pass.
    await t.db.query(
      `INSERT INTO task_events (task_id, type, message, tenant_id) SELECT $1, 'log', 'more', 'default' FROM generate_series(1, 5)`,
      [chatty],
    );
    await cleaner.runOnce();
    expect(await eventsOf(t.db, [chatty])).toBe(10);
  });

  it('bounds node logs, LLM usage, plugin deliveries, health history, stats samples and ended sessions', async () => {
    await setConfig({ NODE_LOG_RETENTION_LINES: 100, SERVICE_HEALTH_HISTORY: 5 });
    await t.db.query(
      `INSERT INTO node_logs (node_id, level, message, tenant_id) SELECT 'n1', 'info', 'l' || g, 'default' FROM generate_series(1, 150) g`,
    );
    await t.db.query(
      `INSERT INTO llm_usage (request_id, requested_model, model, provider, status, stream, prompt_tokens, completion_tokens, duration_ms, started_at, tenant_id)
       SELECT 'r' || g, 'm', 'm', 'p', 'ok', false, 1, 1, 1, now() - make_interval(days => CASE WHEN g <= 3 THEN 31 ELSE 1 END), 'default'
       FROM generate_series(1, 5) g`,
    );
    const task = await seedTask(t.db, { status: 'running', finishedAgo: null });
    await t.db.query(
      `INSERT INTO plugin_deliveries (plugin, webhook_id, task_id, received_at, tenant_id)
       SELECT 'p', 'w' || g, $1, now() - make_interval(hours => CASE WHEN g <= 2 THEN 25 ELSE 1 END), 'default' FROM generate_series(1, 4) g`,
      [task],
    );
    const [{ id: service }] = (await t.db.query(
      `INSERT INTO agent_services (name, kind, tenant_id) VALUES ('svc', 'external', 'default') RETURNING id`,
    )) as { id: string }[];
    await t.db.query(
      `INSERT INTO service_health_checks (service_id, status, checked_at, tenant_id)
       SELECT $1, 'healthy', now() - make_interval(mins => g), 'default' FROM generate_series(1, 12) g`,
      [service],
    );
    await t.db.query(
      `INSERT INTO service_stat_samples (service_id, sampled_at, connections, sessions, opened, messages, errors, tenant_id)
       SELECT $1, now() - make_interval(days => CASE WHEN g <= 2 THEN 8 ELSE 1 END), 0, 0, 0, 0, 0, 'default' FROM generate_series(1, 5) g`,
      [service],
    );
    await t.db.query(
      `INSERT INTO agent_sessions (session_id, service_id, open_connections, started_at, ended_at, tenant_id) VALUES
         ('old', $1, 0, now() - interval '10 days', now() - interval '9 days', 'default'),
         ('recent', $1, 0, now() - interval '2 days', now() - interval '1 day', 'default'),
         ('open', $1, 1, now() - interval '20 days', NULL, 'default')`,
      [service],
    );

    const removed = await cleaner.runOnce();
    expect(removed).toMatchObject({
      node_logs: 50,
      llm_usage: 3,
      plugin_deliveries: 2,
      service_health_checks: 7,
      service_stat_samples: 2,
      agent_sessions: 1,
    });
    expect(await count(t.db, 'node_logs')).toBe(100);
    expect(await count(t.db, `node_logs WHERE message = 'l51'`)).toBe(1);
    expect(await count(t.db, 'llm_usage')).toBe(2);
    expect(await count(t.db, 'plugin_deliveries')).toBe(2);
    // The newest five checks are the ones kept.
    expect(await count(t.db, `service_health_checks WHERE checked_at > now() - interval '6 minutes'`)).toBe(5);
    expect(await count(t.db, 'service_health_checks')).toBe(5);
    expect(await count(t.db, 'service_stat_samples')).toBe(3);
    expect(
      ((await t.db.query(`SELECT session_id FROM agent_sessions ORDER BY session_id`)) as { session_id: string }[]).map(
        (r) => r.session_id,
      ),
    ).toEqual(['open', 'recent']);
    await t.db.query(`DELETE FROM agent_services`);
    await t.db.query(`DELETE FROM node_logs`);
    await t.db.query(`DELETE FROM llm_usage`);
  });

  it('runs on one hub at a time: a second pass while one runs is skipped', async () => {
    // A pass in progress elsewhere holds the lock (a pass on an empty database is too quick to
    // overlap reliably with another one started beside it): this pass is skipped…
    let release!: () => void;
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const other = withRetentionLock(t.db, () => {
      holding();
      return new Promise<void>((r) => (release = r));
    });
    await held;
    expect(await cleaner.runOnce()).toBeUndefined();
    release();
    await other;
    // …and runs once the other pass is over.
    expect(await cleaner.runOnce()).toBeDefined();
  });

  it('finds what to remove through the finished index, not by a scan of tasks', async () => {
    await t.db.query(
      `INSERT INTO tasks (tenant_id, status, created_at, completed_at)
       SELECT 'default', CASE WHEN g % 4 = 0 THEN 'pending' ELSE 'completed' END, now() - make_interval(secs => g),
              CASE WHEN g % 4 = 0 THEN NULL ELSE now() - make_interval(secs => g) END
       FROM generate_series(1, 20000) g`,
    );
    const finished = `COALESCE(GREATEST(completed_at, cancelled_at), created_at)`;
    for (const sql of [
      `SELECT id FROM tasks
       WHERE tenant_id = 'default' AND status IN ('completed', 'failed', 'cancelled', 'timed_out')
         AND ${finished} < now() - interval '1 day' AND (awaits_callback IS NULL OR ${finished} < now() - interval '1 day')
       ORDER BY ${finished}, id LIMIT 1000 FOR UPDATE SKIP LOCKED`,
      `SELECT id FROM tasks WHERE tenant_id = 'default' AND status IN ('completed', 'failed', 'cancelled', 'timed_out')
       ORDER BY ${finished} DESC, id DESC OFFSET 1000 LIMIT 1`,
    ]) {
      const plan = (await t.db.query(`EXPLAIN ${sql}`)) as { 'QUERY PLAN': string }[];
      const text = plan.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toContain('IDX_tasks_finished');
      expect(text).not.toMatch(/Seq Scan on tasks/);
    }
  });

  it('loses nothing in flight while it loops with a tiny age next to live dispatch and completions', async () => {
    await setConfig({ TASK_RETENTION: '1s', TASK_RETENTION_GRACE: '0', TASK_EVENTS_MAX_PER_TASK: 2 });
    const completed = new Map<string, number>();
    const off = t.app.get(EventBus).on('task.completed', ({ task }) => {
      completed.set(task.id, (completed.get(task.id) ?? 0) + 1);
    });
    const [{ before }] = (await t.db.query(
      `SELECT deadlocks::int AS before FROM pg_stat_database WHERE datname = current_database()`,
    )) as { before: number }[];
    const devices = Array.from(
      { length: 4 },
      (_, i) => new SeedDevice({ url: t.url, id: `ret-dev-${i}`, token: t.keys.worker, taskMs: 5, progress: true }),
    );
    const errorsBefore = (await t.app.get(RetentionMetrics).errors.get()).values.reduce((a, v) => a + v.value, 0);
    let looping = true;
    let passes = 0;
    let removed = 0;
    const loop = (async () => {
      while (looping) {
        const r = await cleaner.runOnce();
        passes++;
        removed += r?.tasks ?? 0;
        await sleep(20);
      }
    })();
    try {
      await Promise.all(devices.map((d) => d.registered()));
      const ids: string[] = [];
      for (let round = 0; round < 6; round++) {
        const { ids: some, refused } = await submitTasks(
          t.url,
          50,
          (i) => ({ type: 'prompt', prompt: `r${round}-${i}` }),
          t.keys.client,
        );
        expect(refused).toBe(0);
        ids.push(...some);
        await sleep(300);
      }
      const deadline = Date.now() + 30_000;
      while (ids.some((id) => !completed.has(id)) && Date.now() < deadline) await sleep(100);
      expect(ids.filter((id) => completed.get(id) !== 1)).toEqual([]);
      // Nothing submitted is lost: every task either completed and was then removed, or is still there completed.
      const rows: { id: string; status: string }[] = await t.db.query(
        `SELECT id, status FROM tasks WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      expect(rows.filter((r) => r.status !== 'completed')).toEqual([]);
      expect(removed).toBeGreaterThan(0);
      expect(passes).toBeGreaterThan(3);
      for (const d of devices) expect(d.errors).toEqual([]);
      for (const d of devices) for (const id of d.resultsSent.keys()) expect(d.resultsSent.get(id)).toBe(1);
    } finally {
      looping = false;
      await loop;
      off();
      for (const d of devices) d.close();
    }
    const errorsAfter = (await t.app.get(RetentionMetrics).errors.get()).values.reduce((a, v) => a + v.value, 0);
    expect(errorsAfter - errorsBefore).toBe(0);
    const [{ after }] = (await t.db.query(
      `SELECT deadlocks::int AS after FROM pg_stat_database WHERE datname = current_database()`,
    )) as { after: number }[];
    expect(after - before).toBe(0);
    expect(await counterMismatches(t.db)).toEqual({});
  }, 90_000);
});
