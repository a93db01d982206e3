import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The Codex `estimatedDuration`: the last completed tasks of one type, newest first, read from the index alone. */
export class CompletedByTypeIndex1764800000000 implements MigrationInterface {
  name = 'CompletedByTypeIndex1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "IDX_tasks_completed_type" ON "tasks" ("type", "completed_at" DESC) INCLUDE ("started_at") WHERE "status" = 'completed'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_completed_type"`);
  }
}
