import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Devices and nodes that take pushed tasks, and what a task asks of them. */
export class Nodes1763900000000 implements MigrationInterface {
  name = 'Nodes1763900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "nodes" (
        "id" text NOT NULL,
        "name" text,
        "kind" text NOT NULL DEFAULT 'device',
        "vocabulary" text NOT NULL DEFAULT 'device',
        "status" text NOT NULL DEFAULT 'offline',
        "draining" boolean NOT NULL DEFAULT false,
        "capacity" integer NOT NULL DEFAULT 1,
        "tags" text[] NOT NULL DEFAULT '{}',
        "capabilities" text[] NOT NULL DEFAULT '{}',
        "info" jsonb NOT NULL DEFAULT '{}',
        "version" text,
        "instance_id" text,
        "socket_id" text,
        "registered_at" timestamptz NOT NULL DEFAULT now(),
        "connected_at" timestamptz,
        "last_heartbeat_at" timestamptz,
        "disconnected_at" timestamptz,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_nodes" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_nodes_status" CHECK ("status" IN ('online', 'offline')),
        CONSTRAINT "CHK_nodes_kind" CHECK ("kind" IN ('device', 'node', 'worker'))
      )`);
    await q.query(`CREATE INDEX "IDX_nodes_status" ON "nodes" ("status")`);
    await q.query(`ALTER TABLE "tasks" ADD "required_tags" text[] NOT NULL DEFAULT '{}'`);
    // Held tasks per node: load counts, node detail, and re-queue on node loss.
    await q.query(
      `CREATE INDEX "IDX_tasks_node_held" ON "tasks" ("node_id") WHERE "status" IN ('dispatched','running')`,
    );
    // When the next delayed or backed-off task is due: the dispatcher arms one timer from it.
    await q.query(`CREATE INDEX "IDX_tasks_pending_run_at" ON "tasks" ("run_at") WHERE "status" = 'pending'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_pending_run_at"`);
    await q.query(`DROP INDEX "IDX_tasks_node_held"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "required_tags"`);
    await q.query(`DROP TABLE "nodes"`);
  }
}
