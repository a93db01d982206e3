import type { MigrationInterface, QueryRunner } from 'typeorm';

const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;

/**
 * Schedules (issue 26, docs/schedules.md): a task or a notification at a time (`at`) or on a
 * cron expression, per tenant (row-level security like every tenant table). `next_run_at` is
 * the one column the pollers of every hub read: a due row is claimed FOR UPDATE SKIP LOCKED, so
 * one hub fires each slot. Disabled and spent rows have no next_run_at and stay out of the index.
 */
export class Schedules1766000000000 implements MigrationInterface {
  name = 'Schedules1766000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "schedules" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "tenant_id" text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
          CONSTRAINT "FK_schedules_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE,
        "name" text,
        "cron" text,
        "timezone" text NOT NULL DEFAULT 'UTC',
        "at" timestamptz,
        "task" jsonb,
        "notification" jsonb,
        "enabled" boolean NOT NULL DEFAULT true,
        "next_run_at" timestamptz,
        "last_run_at" timestamptz,
        "last_task_id" uuid,
        "runs" integer NOT NULL DEFAULT 0,
        "last_error" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_schedules" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_schedules_when" CHECK (("cron" IS NULL) <> ("at" IS NULL)),
        CONSTRAINT "CHK_schedules_what" CHECK (("task" IS NULL) <> ("notification" IS NULL))
      )`);
    await q.query(
      `CREATE INDEX "IDX_schedules_due" ON "schedules" ("next_run_at") WHERE "enabled" AND "next_run_at" IS NOT NULL`,
    );
    await q.query(`CREATE INDEX "IDX_schedules_tenant_created" ON "schedules" ("tenant_id", "created_at")`);
    await q.query(`CREATE POLICY "tenant_isolation" ON "schedules" USING ${MATCHES} WITH CHECK ${MATCHES}`);
    await q.query(`ALTER TABLE "schedules" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "schedules" FORCE ROW LEVEL SECURITY`);
    // The hub's role gets the new table at boot too (grantAppRole); granted here for a hub
    // whose user may migrate but not grant later.
    await q.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          GRANT SELECT, INSERT, UPDATE, DELETE ON "schedules" TO taskhub_app;
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "schedules"`);
  }
}
