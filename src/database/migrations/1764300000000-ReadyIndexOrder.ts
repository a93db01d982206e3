import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ready index covers the dispatcher's whole ORDER BY (priority DESC, created_at, id).
 * Without `id`, tasks submitted in one batch share created_at, and every round sorted a whole
 * batch (or the planner chose a bitmap scan and sorted every pending task): 12–23 ms a round
 * in the W2 drain instead of 0.3 ms.
 */
export class ReadyIndexOrder1764300000000 implements MigrationInterface {
  name = 'ReadyIndexOrder1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_ready"`);
    await q.query(
      `CREATE INDEX "IDX_tasks_ready" ON "tasks" ("priority" DESC, "created_at", "id") WHERE "status" = 'pending'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_ready"`);
    await q.query(
      `CREATE INDEX "IDX_tasks_ready" ON "tasks" ("priority" DESC, "created_at") WHERE "status" = 'pending'`,
    );
  }
}
