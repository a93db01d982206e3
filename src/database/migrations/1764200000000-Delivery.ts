import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Recovery as a property of the hub (issue 9): hub processes record themselves so a node
 * whose holding process died goes offline at once; nodes say whether they acknowledge
 * assignments; tasks count their deliveries so an unacknowledged one is re-sent, then released.
 */
export class Delivery1764200000000 implements MigrationInterface {
  name = 'Delivery1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "hub_instances" (
        "id" text NOT NULL,
        "name" text NOT NULL,
        "host" text,
        "pid" integer,
        "started_at" timestamptz NOT NULL DEFAULT now(),
        "last_seen_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_hub_instances" PRIMARY KEY ("id")
      )`);
    await q.query(`CREATE INDEX "IDX_hub_instances_name" ON "hub_instances" ("name")`);
    await q.query(`ALTER TABLE "nodes" ADD "acks" boolean NOT NULL DEFAULT false`);
    await q.query(`CREATE INDEX "IDX_nodes_instance_online" ON "nodes" ("instance_id") WHERE "status" = 'online'`);
    await q.query(`ALTER TABLE "tasks" ADD "delivery_count" smallint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE "tasks" ADD "delivered_at" timestamptz`);
    // Assignments waiting for an ack: the liveness tick looks for old ones.
    await q.query(
      `CREATE INDEX "IDX_tasks_dispatched_delivered" ON "tasks" ("delivered_at") WHERE "status" = 'dispatched'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_dispatched_delivered"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "delivered_at"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "delivery_count"`);
    await q.query(`DROP INDEX "IDX_nodes_instance_online"`);
    await q.query(`ALTER TABLE "nodes" DROP COLUMN "acks"`);
    await q.query(`DROP TABLE "hub_instances"`);
  }
}
