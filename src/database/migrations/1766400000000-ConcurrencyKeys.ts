import type { MigrationInterface, QueryRunner } from 'typeorm';

const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;

/**
 * Concurrency keys (issue 29, docs/flow-control.md): a task may name a key; a tenant may limit
 * how many tasks of a key are out at once (`max_running`) and how many start in a rolling window
 * (`max_per_minute`). Both indexes are partial on `concurrency_key IS NOT NULL`, so a task without
 * a key writes no entry in them: users who never set a key pay nothing on any change of state.
 * - IDX_tasks_concurrency_unfinished: the unfinished tasks of a key by state: the live count of
 *   those out (dispatched, running) and "has it waiting work" never read finished history.
 * - IDX_tasks_concurrency_starts: the tasks of a key by their last start, so "started in the last
 *   minute" is one short range at the end of the index.
 */
export class ConcurrencyKeys1766400000000 implements MigrationInterface {
  name = 'ConcurrencyKeys1766400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" ADD "concurrency_key" text`);
    await q.query(
      `CREATE INDEX "IDX_tasks_concurrency_unfinished" ON "tasks" ("tenant_id", "concurrency_key", "status")
       WHERE "concurrency_key" IS NOT NULL AND "status" IN ('pending', 'dispatched', 'running')`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_concurrency_starts" ON "tasks" ("tenant_id", "concurrency_key", "dispatched_at")
       WHERE "concurrency_key" IS NOT NULL AND "dispatched_at" IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE "concurrency_limits" (
        "tenant_id" text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
          CONSTRAINT "FK_concurrency_limits_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE,
        "key" text NOT NULL,
        "max_running" integer,
        "max_per_minute" integer,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_concurrency_limits" PRIMARY KEY ("tenant_id", "key"),
        CONSTRAINT "CHK_concurrency_limits_some" CHECK ("max_running" IS NOT NULL OR "max_per_minute" IS NOT NULL),
        CONSTRAINT "CHK_concurrency_limits_positive" CHECK (COALESCE("max_running", 1) >= 1 AND COALESCE("max_per_minute", 1) >= 1)
      )`);
    await q.query(`CREATE POLICY "tenant_isolation" ON "concurrency_limits" USING ${MATCHES} WITH CHECK ${MATCHES}`);
    await q.query(`ALTER TABLE "concurrency_limits" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "concurrency_limits" FORCE ROW LEVEL SECURITY`);
    await q.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          GRANT SELECT, INSERT, UPDATE, DELETE ON "concurrency_limits" TO taskhub_app;
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "concurrency_limits"`);
    await q.query(`DROP INDEX "IDX_tasks_concurrency_starts"`);
    await q.query(`DROP INDEX "IDX_tasks_concurrency_unfinished"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "concurrency_key"`);
  }
}
