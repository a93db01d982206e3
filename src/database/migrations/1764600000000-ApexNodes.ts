import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Apex nodes (seed 001): what their last heartbeat reported (status, resources, stats), and
 * the log lines they send (bounded; those about a task are also task events).
 */
export class ApexNodes1764600000000 implements MigrationInterface {
  name = 'ApexNodes1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "nodes" ADD "reported_status" text, ADD "resources" jsonb, ADD "stats" jsonb`);
    await q.query(`
      CREATE TABLE "node_logs" (
        "id" bigserial NOT NULL,
        "node_id" text NOT NULL,
        "task_id" uuid,
        "level" text NOT NULL,
        "message" text NOT NULL,
        "data" jsonb,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_node_logs" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_node_logs_level" CHECK ("level" IN ('debug', 'info', 'warn', 'error'))
      )`);
    await q.query(`CREATE INDEX "IDX_node_logs_node" ON "node_logs" ("node_id", "id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "node_logs"`);
    await q.query(`ALTER TABLE "nodes" DROP COLUMN "reported_status", DROP COLUMN "resources", DROP COLUMN "stats"`);
  }
}
