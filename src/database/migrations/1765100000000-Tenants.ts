import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Every table whose rows belong to one tenant's data. runtime_settings and hub_instances stay global. */
const TENANT_TABLES = [
  'tasks',
  'task_events',
  'nodes',
  'node_logs',
  'routing_rules',
  'agent_services',
  'service_health_checks',
  'service_stat_samples',
  'agent_service_counters',
  'agent_sessions',
  'plugins',
  'plugin_deliveries',
  'llm_key_quota',
  'llm_usage',
] as const;

/**
 * A row written by the system ('*': dispatcher, sweepers, socket handlers) about a parent row
 * takes the parent's tenant, not `default`: a task's events, a node's logs, a service's checks.
 * Under a tenant's context the default is already right, so the lookup is skipped.
 */
const INHERIT: { table: string; fn: string; from: string }[] = [
  {
    table: 'task_events',
    fn: 'taskhub_tenant_from_task',
    from: `(SELECT tenant_id FROM tasks WHERE id = NEW.task_id)`,
  },
  {
    table: 'plugin_deliveries',
    fn: 'taskhub_tenant_from_task',
    from: `(SELECT tenant_id FROM tasks WHERE id = NEW.task_id)`,
  },
  { table: 'node_logs', fn: 'taskhub_tenant_from_node', from: `(SELECT tenant_id FROM nodes WHERE id = NEW.node_id)` },
  {
    table: 'service_health_checks',
    fn: 'taskhub_tenant_from_service',
    from: `(SELECT tenant_id FROM agent_services WHERE id = NEW.service_id)`,
  },
  {
    table: 'service_stat_samples',
    fn: 'taskhub_tenant_from_service',
    from: `(SELECT tenant_id FROM agent_services WHERE id = NEW.service_id)`,
  },
  {
    table: 'agent_service_counters',
    fn: 'taskhub_tenant_from_service',
    from: `(SELECT tenant_id FROM agent_services WHERE id = NEW.service_id)`,
  },
  {
    table: 'agent_sessions',
    fn: 'taskhub_tenant_from_service',
    from: `(SELECT tenant_id FROM agent_services WHERE id = NEW.service_id)`,
  },
  {
    table: 'llm_key_quota',
    fn: 'taskhub_tenant_from_key',
    from: `(SELECT tenant_id FROM api_keys WHERE id = NEW.key_id)`,
  },
  {
    table: 'llm_usage',
    fn: 'taskhub_tenant_from_key_or_node',
    from: `COALESCE((SELECT tenant_id FROM api_keys WHERE id = NEW.key_id), (SELECT tenant_id FROM nodes WHERE id = NEW.node_id))`,
  },
];

/** Names unique per tenant instead of hub-wide: [table, old constraint, new constraint, columns]. */
const UNIQUE_PER_TENANT = [
  ['agent_services', 'UQ_agent_services_name', 'UQ_agent_services_tenant_name', '"tenant_id", "name"'],
  ['routing_rules', 'UQ_routing_rules_name', 'UQ_routing_rules_tenant_name', '"tenant_id", "name"'],
  ['plugins', 'UQ_plugins_name', 'UQ_plugins_tenant_name', '"tenant_id", "name"'],
] as const;

/**
 * `(SELECT taskhub_current_tenant())` is an init plan: read once per statement, not once per row;
 * '*' (the system's hot paths) is tested first. The claim plans keep their indexes (checked
 * with EXPLAIN on the dispatcher's candidate query: IDX_tasks_ready, IDX_tasks_node_held).
 */
const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;
const policy = (table: string): string =>
  `CREATE POLICY "tenant_isolation" ON "${table}" USING ${MATCHES} WITH CHECK ${MATCHES}`;

/**
 * Tenants (issue 15, docs/tenants.md): every tenant-owned row carries `tenant_id`, and
 * row-level security shows a connection only the rows of the tenant in `taskhub.tenant_id`
 * ('*': all of them; unset or empty: none, and inserts fail). Existing rows move to `default`.
 * The hub's connections act as role taskhub_app, which cannot bypass the policies.
 */
export class Tenants1765100000000 implements MigrationInterface {
  name = 'Tenants1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "tenants" (
        "id" text NOT NULL,
        "name" text NOT NULL,
        "limits" jsonb NOT NULL DEFAULT '{}',
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_tenants" PRIMARY KEY ("id"),
        CONSTRAINT "UQ_tenants_name" UNIQUE ("name")
      )`);
    await q.query(`INSERT INTO "tenants" ("id", "name") VALUES ('default', 'default')`);

    await q.query(`
      CREATE FUNCTION taskhub_current_tenant() RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT current_setting('taskhub.tenant_id', true) $$`);
    // '*' (the system, a global admin without X-Tenant-Id) writes into default; unset or '' gives
    // NULL, which NOT NULL refuses: a request that auth never bound cannot write.
    await q.query(`
      CREATE FUNCTION taskhub_current_tenant_for_insert() RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT CASE current_setting('taskhub.tenant_id', true)
                     WHEN '*' THEN 'default' WHEN '' THEN NULL
                     ELSE current_setting('taskhub.tenant_id', true) END $$`);

    // Add with default 'default' (fills every existing row), then switch to the context's tenant.
    for (const table of TENANT_TABLES) {
      await q.query(
        `ALTER TABLE "${table}" ADD "tenant_id" text NOT NULL DEFAULT 'default'
           CONSTRAINT "FK_${table}_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE`,
      );
      await q.query(`ALTER TABLE "${table}" ALTER "tenant_id" SET DEFAULT taskhub_current_tenant_for_insert()`);
    }
    // api_keys: NULL is a global key (the first admin). Existing admin keys stay global (in the
    // previous release they ran the whole hub, tenants now included); client and worker keys
    // move to default with the data they made.
    await q.query(
      `ALTER TABLE "api_keys" ADD "tenant_id" text CONSTRAINT "FK_api_keys_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE`,
    );
    await q.query(`UPDATE "api_keys" SET "tenant_id" = 'default' WHERE NOT ('admin' = ANY ("roles"))`);
    await q.query(`CREATE INDEX "IDX_api_keys_tenant" ON "api_keys" ("tenant_id")`);

    for (const { fn, from, table } of INHERIT) {
      await q.query(`
        CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.tenant_id := COALESCE(${from}, NEW.tenant_id);
          RETURN NEW;
        END $$`);
      // WHEN: under a tenant's context the trigger is not even called.
      await q.query(
        `CREATE TRIGGER "TRG_${table}_tenant" BEFORE INSERT ON "${table}" FOR EACH ROW
         WHEN (taskhub_current_tenant() = '*') EXECUTE FUNCTION ${fn}()`,
      );
    }

    for (const [table, old, constraint, columns] of UNIQUE_PER_TENANT) {
      await q.query(`ALTER TABLE "${table}" DROP CONSTRAINT "${old}"`);
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "${constraint}" UNIQUE (${columns})`);
    }
    await q.query(`ALTER TABLE "plugin_deliveries" DROP CONSTRAINT "PK_plugin_deliveries"`);
    await q.query(
      `ALTER TABLE "plugin_deliveries" ADD CONSTRAINT "PK_plugin_deliveries" PRIMARY KEY ("tenant_id", "plugin", "webhook_id")`,
    );
    await q.query(`DROP INDEX "UQ_tasks_idempotency_key"`);
    await q.query(
      `CREATE UNIQUE INDEX "UQ_tasks_idempotency_key" ON "tasks" ("tenant_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL`,
    );
    // Lists of one tenant, newest first. The claim path keeps its partial ready index untouched.
    await q.query(`CREATE INDEX "IDX_tasks_tenant_created" ON "tasks" ("tenant_id", "created_at")`);
    await q.query(`CREATE INDEX "IDX_nodes_tenant" ON "nodes" ("tenant_id")`);
    await q.query(`CREATE INDEX "IDX_llm_usage_tenant_started" ON "llm_usage" ("tenant_id", "started_at")`);

    for (const table of TENANT_TABLES) {
      await q.query(policy(table));
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
    }
    // A NULL tenant (a global key) matches no tenant: only '*' sees global keys.
    await q.query(policy('api_keys'));
    await q.query(`ALTER TABLE "api_keys" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "api_keys" FORCE ROW LEVEL SECURITY`);
    // A tenant's context may read its own tenant row; only '*' sees (and writes) the others.
    await q.query(`CREATE POLICY "tenant_isolation" ON "tenants"
      USING ((SELECT taskhub_current_tenant()) = '*' OR "id" = (SELECT taskhub_current_tenant()))
      WITH CHECK ((SELECT taskhub_current_tenant()) = '*')`);
    await q.query(`ALTER TABLE "tenants" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "tenants" FORCE ROW LEVEL SECURITY`);

    // Roles are cluster-wide (many databases share a test server): made once, a concurrent
    // creator tolerated; a migrating user without CREATEROLE leaves it to the operator.
    await q.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          CREATE ROLE taskhub_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        END IF;
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN RAISE NOTICE 'cannot create role taskhub_app: create it NOLOGIN NOBYPASSRLS';
      END $$`);
    await q.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          GRANT USAGE ON SCHEMA public TO taskhub_app;
          GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO taskhub_app;
          GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO taskhub_app;
          GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO taskhub_app;
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Only default's rows survive a way back (names and keys are hub-wide again).
    for (const table of [...TENANT_TABLES, 'api_keys']) {
      await q.query(`DROP POLICY "tenant_isolation" ON "${table}"`);
      await q.query(`ALTER TABLE "${table}" NO FORCE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" DISABLE ROW LEVEL SECURITY`);
    }
    await q.query(`DELETE FROM "tenants" WHERE "id" <> 'default'`); // cascades to their rows
    await q.query(`DROP INDEX "IDX_llm_usage_tenant_started"`);
    await q.query(`DROP INDEX "IDX_nodes_tenant"`);
    await q.query(`DROP INDEX "IDX_tasks_tenant_created"`);
    await q.query(`DROP INDEX "UQ_tasks_idempotency_key"`);
    await q.query(
      `CREATE UNIQUE INDEX "UQ_tasks_idempotency_key" ON "tasks" ("idempotency_key") WHERE "idempotency_key" IS NOT NULL`,
    );
    await q.query(`ALTER TABLE "plugin_deliveries" DROP CONSTRAINT "PK_plugin_deliveries"`);
    await q.query(
      `ALTER TABLE "plugin_deliveries" ADD CONSTRAINT "PK_plugin_deliveries" PRIMARY KEY ("plugin", "webhook_id")`,
    );
    for (const [table, old, constraint] of UNIQUE_PER_TENANT) {
      await q.query(`ALTER TABLE "${table}" DROP CONSTRAINT "${constraint}"`);
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "${old}" UNIQUE ("name")`);
    }
    for (const { table } of INHERIT) await q.query(`DROP TRIGGER "TRG_${table}_tenant" ON "${table}"`);
    for (const fn of new Set(INHERIT.map((i) => i.fn))) await q.query(`DROP FUNCTION ${fn}()`);
    for (const table of [...TENANT_TABLES, 'api_keys']) await q.query(`ALTER TABLE "${table}" DROP COLUMN "tenant_id"`);
    await q.query(`DROP FUNCTION taskhub_current_tenant_for_insert()`);
    await q.query(`DROP FUNCTION taskhub_current_tenant()`);
    await q.query(`DROP TABLE "tenants"`);
    // The role is cluster-wide (other databases may use it): left in place.
  }
}
