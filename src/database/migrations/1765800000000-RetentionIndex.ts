import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention (docs/retention.md) finds a tenant's oldest finished tasks by when they finished:
 * an index range, never a scan of the table. The key uses the columns that only change with
 * the status (completed_at, cancelled_at) or never (created_at), not updated_at: an index on
 * updated_at would make every progress report a non-HOT update.
 */
export class RetentionIndex1765800000000 implements MigrationInterface {
  name = 'RetentionIndex1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "IDX_tasks_finished" ON "tasks"
         ("tenant_id", (COALESCE(GREATEST("completed_at", "cancelled_at"), "created_at")), "id")
       WHERE "status" IN ('completed', 'failed', 'cancelled', 'timed_out')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_finished"`);
  }
}
