import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions, migrations } from '../../src/database/data-source-options.js';
import { Tenants1765100000000 } from '../../src/database/migrations/1765100000000-Tenants.js';
import { createEmptyDatabase } from '../support/test-database.js';

/** Every table of the previous release and how many rows this test puts in it. */
const SEEDED: Record<string, number> = {
  api_keys: 3,
  tasks: 2,
  task_events: 3,
  nodes: 1,
  node_logs: 1,
  routing_rules: 1,
  agent_services: 1,
  service_health_checks: 1,
  service_stat_samples: 1,
  agent_service_counters: 1,
  agent_sessions: 1,
  plugins: 1,
  plugin_deliveries: 1,
  llm_key_quota: 1,
  llm_usage: 1,
};

describe('tenants migration of a database made by the previous release', () => {
  let url: string;
  let raw: pg.Client;

  beforeAll(async () => {
    url = await createEmptyDatabase('tenants_migration');
    const previous = new DataSource({
      ...dataSourceOptions(url, 1),
      // The previous release: every migration before the tenants one.
      migrations: migrations.slice(0, migrations.indexOf(Tenants1765100000000)),
    });
    await previous.initialize();
    try {
      await previous.runMigrations({ transaction: 'each' });
    } finally {
      await previous.destroy();
    }
    raw = new pg.Client({ connectionString: url });
    await raw.connect();
    // The previous release's rows, one or more in every table.
    await raw.query(`
      INSERT INTO api_keys (id, name, role, roles, key_hash, prefix) VALUES
        ('10000000-0000-4000-8000-000000000001', 'bootstrap-admin', 'admin', '{admin}', 'h1', 'th_1'),
        ('10000000-0000-4000-8000-000000000002', 'client', 'client', '{client}', 'h2', 'th_2'),
        ('10000000-0000-4000-8000-000000000003', 'worker', 'worker', '{worker,client}', 'h3', 'th_3');
      INSERT INTO tasks (id, prompt, idempotency_key, status) VALUES
        ('20000000-0000-4000-8000-000000000001', 'one', 'k1', 'pending'),
        ('20000000-0000-4000-8000-000000000002', 'two', NULL, 'completed');
      INSERT INTO task_events (task_id, type, message) VALUES
        ('20000000-0000-4000-8000-000000000001', 'created', 'Task created'),
        ('20000000-0000-4000-8000-000000000002', 'created', 'Task created'),
        ('20000000-0000-4000-8000-000000000002', 'completed', 'Task completed');
      INSERT INTO nodes (id, name) VALUES ('node-1', 'Node 1');
      INSERT INTO node_logs (node_id, level, message) VALUES ('node-1', 'info', 'hello');
      INSERT INTO routing_rules (name) VALUES ('rule-1');
      INSERT INTO agent_services (id, name, kind) VALUES ('30000000-0000-4000-8000-000000000001', 'svc-1', 'external');
      INSERT INTO service_health_checks (service_id, status) VALUES ('30000000-0000-4000-8000-000000000001', 'healthy');
      INSERT INTO service_stat_samples (service_id, connections, sessions, opened, messages, errors)
        VALUES ('30000000-0000-4000-8000-000000000001', 1, 1, 1, 1, 0);
      INSERT INTO agent_service_counters (service_id) VALUES ('30000000-0000-4000-8000-000000000001');
      INSERT INTO agent_sessions (session_id, service_id) VALUES ('s-1', '30000000-0000-4000-8000-000000000001');
      INSERT INTO plugins (name, secret, token_hash) VALUES ('plugin-1', 'whsec_x', 'th');
      INSERT INTO plugin_deliveries (plugin, webhook_id, task_id) VALUES ('plugin-1', 'w-1', '20000000-0000-4000-8000-000000000001');
      INSERT INTO llm_key_quota (key_id, window_start, budget_start)
        VALUES ('10000000-0000-4000-8000-000000000002', now(), now());
      INSERT INTO llm_usage (request_id, key_id, requested_model, model, provider, status, stream, prompt_tokens, completion_tokens, duration_ms, started_at)
        VALUES ('r-1', '10000000-0000-4000-8000-000000000002', 'm', 'm', 'p', 'ok', false, 1, 1, 1, now());
      INSERT INTO runtime_settings (key, value) VALUES ('LOG_LEVEL', '"info"');
      INSERT INTO hub_instances (id, name) VALUES ('i-1', 'hub');
    `);
    const current = new DataSource(dataSourceOptions(url, 1));
    await current.initialize();
    try {
      const applied = await current.runMigrations({ transaction: 'each' });
      // This release: the tenants migration first, then every later one.
      expect(applied.map((m) => m.name)).toEqual(
        migrations.slice(migrations.indexOf(Tenants1765100000000)).map((m) => m.name),
      );
    } finally {
      await current.destroy();
    }
  });
  afterAll(() => raw.end());

  it('keeps every row, now in default', async () => {
    for (const [table, count] of Object.entries(SEEDED)) {
      if (table === 'api_keys') continue;
      const { rows } = await raw.query<{ n: number; tenants: string[] }>(
        `SELECT count(*)::int AS n, array_agg(DISTINCT tenant_id) AS tenants FROM ${table}`,
      );
      expect({ table, ...rows[0] }).toEqual({ table, n: count, tenants: ['default'] });
    }
    expect((await raw.query(`SELECT id, name FROM tenants`)).rows).toEqual([{ id: 'default', name: 'default' }]);
    // Global tables stay as they were, without tenant_id.
    expect((await raw.query(`SELECT count(*)::int AS n FROM runtime_settings`)).rows[0].n).toBe(1);
    expect((await raw.query(`SELECT count(*)::int AS n FROM hub_instances`)).rows[0].n).toBe(1);
    const globalColumns = await raw.query(
      `SELECT table_name FROM information_schema.columns WHERE column_name = 'tenant_id' AND table_name IN ('runtime_settings', 'hub_instances')`,
    );
    expect(globalColumns.rowCount).toBe(0);
  });

  it('admin keys stay global (they ran the whole hub); client and worker keys move to default', async () => {
    const { rows } = await raw.query(`SELECT name, tenant_id FROM api_keys ORDER BY name`);
    expect(rows).toEqual([
      { name: 'bootstrap-admin', tenant_id: null },
      { name: 'client', tenant_id: 'default' },
      { name: 'worker', tenant_id: 'default' },
    ]);
  });

  it('puts a policy on every tenant-owned table, with row-level security forced', async () => {
    const { rows } = await raw.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
       JOIN pg_policies p ON p.tablename = c.relname AND p.policyname = 'tenant_isolation'
       WHERE c.relkind = 'r' ORDER BY c.relname`,
    );
    // The task counters (migration 1765700000000) and the daily proxy connection peaks
    // (1766200000000) carry tenant_id under the same policy.
    const counters = [
      'agent_connection_peaks',
      'task_count_deltas',
      'task_counts',
      'task_finish_deltas',
      'task_finish_minutes',
      'task_node_finishes',
    ];
    // So do schedules (migration 1766000000000), concurrency limits (1766400000000) and rollouts (1766500000000).
    expect(rows.map((r) => r.relname).sort()).toEqual(
      [
        ...Object.keys(SEEDED),
        'tenants',
        ...counters,
        'schedules',
        'concurrency_limits',
        'rollouts',
        'rollout_nodes',
      ].sort(),
    );
    for (const r of rows) expect(r).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
  });

  it("through the app role, default's context sees the migrated rows and an unset one sees none", async () => {
    await raw.query('SET ROLE taskhub_app');
    try {
      expect((await raw.query(`SELECT count(*)::int AS n FROM tasks`)).rows[0].n).toBe(0);
      await raw.query(`SELECT set_config('taskhub.tenant_id', 'default', false)`);
      expect((await raw.query(`SELECT count(*)::int AS n FROM tasks`)).rows[0].n).toBe(2);
      expect((await raw.query(`SELECT count(*)::int AS n FROM task_events`)).rows[0].n).toBe(3);
    } finally {
      await raw.query(`RESET ROLE; SELECT set_config('taskhub.tenant_id', '', false)`);
    }
  });
});
