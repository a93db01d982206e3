import type { MigrationInterface, QueryRunner } from 'typeorm';

const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;

/**
 * Rollouts (issue 29, docs/rollouts.md): one task per targeted node, released at a rate, aborted
 * by failure rules (AWS IoT Jobs' rollout and abort configs). `rollouts` holds the definition and
 * the release state; `rollout_nodes` one row per targeted node (`task_id` null: not released yet).
 * The releasers of every hub read one index (in-progress rollouts with queued nodes, by
 * next_release_at) and claim a due row FOR UPDATE SKIP LOCKED: one hub releases each slot.
 */
export class Rollouts1766500000000 implements MigrationInterface {
  name = 'Rollouts1766500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "rollouts" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "tenant_id" text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
          CONSTRAINT "FK_rollouts_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE,
        "name" text NOT NULL,
        "task" jsonb NOT NULL,
        "target_tags" text[] NOT NULL DEFAULT '{}',
        "target_node_ids" text[] NOT NULL DEFAULT '{}',
        "rate" jsonb,
        "abort" jsonb NOT NULL DEFAULT '[]',
        "include_future_nodes" boolean NOT NULL DEFAULT false,
        "status" text NOT NULL DEFAULT 'in_progress',
        "queued" integer NOT NULL DEFAULT 0,
        "released" integer NOT NULL DEFAULT 0,
        "next_release_at" timestamptz NOT NULL DEFAULT now(),
        "counts" jsonb NOT NULL DEFAULT '{}',
        "reason" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        "finished_at" timestamptz,
        CONSTRAINT "PK_rollouts" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_rollouts_status" CHECK ("status" IN ('in_progress', 'completed', 'aborted', 'cancelled'))
      )`);
    await q.query(
      `CREATE INDEX "IDX_rollouts_due" ON "rollouts" ("next_release_at") WHERE "status" = 'in_progress' AND "queued" > 0`,
    );
    await q.query(
      `CREATE INDEX "IDX_rollouts_future" ON "rollouts" ("tenant_id") WHERE "status" = 'in_progress' AND "include_future_nodes"`,
    );
    await q.query(`CREATE INDEX "IDX_rollouts_tenant_created" ON "rollouts" ("tenant_id", "created_at")`);
    await q.query(`
      CREATE TABLE "rollout_nodes" (
        "rollout_id" uuid NOT NULL CONSTRAINT "FK_rollout_nodes_rollout" REFERENCES "rollouts" ("id") ON DELETE CASCADE,
        "node_id" text NOT NULL,
        "tenant_id" text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
          CONSTRAINT "FK_rollout_nodes_tenant" REFERENCES "tenants" ("id") ON DELETE CASCADE,
        "seq" bigserial NOT NULL,
        "task_id" uuid,
        "released_at" timestamptz,
        "error" text,
        CONSTRAINT "PK_rollout_nodes" PRIMARY KEY ("rollout_id", "node_id")
      )`);
    await q.query(
      `CREATE INDEX "IDX_rollout_nodes_queued" ON "rollout_nodes" ("rollout_id", "seq") WHERE "released_at" IS NULL`,
    );
    for (const table of ['rollouts', 'rollout_nodes']) {
      await q.query(`CREATE POLICY "tenant_isolation" ON "${table}" USING ${MATCHES} WITH CHECK ${MATCHES}`);
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
    }
    // The hub's role gets new tables at boot too (grantAppRole); granted here for a hub whose
    // user may migrate but not grant later.
    await q.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          GRANT SELECT, INSERT, UPDATE, DELETE ON "rollouts", "rollout_nodes" TO taskhub_app;
          GRANT USAGE, SELECT ON SEQUENCE "rollout_nodes_seq_seq" TO taskhub_app;
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "rollout_nodes"`);
    await q.query(`DROP TABLE "rollouts"`);
  }
}
