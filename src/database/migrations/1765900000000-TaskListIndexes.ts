import type { MigrationInterface, QueryRunner } from 'typeorm';

/** (created_at), (status, created_at), (completed_at) and (tenant_id, created_at). */
const SUPERSEDED = ['IDX_tasks_created', 'IDX_tasks_status_created', 'IDX_tasks_completed', 'IDX_tasks_tenant_created'];

/**
 * Indexes behind task lists that never count the table (docs/http-api.md, "Lists"): a page is a
 * merge of one index range per (tenant, state), ordered by the sort column then id, so it reads
 * only the rows it returns. A nullable sort (started_at, completed_at) has one index for the rows
 * with a value and one, in id order, for the rows without (they come last).
 */
export class TaskListIndexes1765900000000 implements MigrationInterface {
  name = 'TaskListIndexes1765900000000';

  async up(q: QueryRunner): Promise<void> {
    // What the lists and statistics used to read, now served by the indexes below or by the
    // counters: every index on tasks is written by every change of state, so these go.
    for (const name of SUPERSEDED) await q.query(`DROP INDEX "${name}"`);
    await q.query(`CREATE INDEX "IDX_tasks_list_created" ON "tasks" ("tenant_id", "status", "created_at", "id")`);
    await q.query(`CREATE INDEX "IDX_tasks_list_priority" ON "tasks" ("tenant_id", "status", "priority", "id")`);
    await q.query(
      `CREATE INDEX "IDX_tasks_list_started" ON "tasks" ("tenant_id", "status", "started_at", "id") WHERE "started_at" IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_list_unstarted" ON "tasks" ("tenant_id", "status", "id") WHERE "started_at" IS NULL`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_list_completed" ON "tasks" ("tenant_id", "status", "completed_at", "id") WHERE "completed_at" IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_list_uncompleted" ON "tasks" ("tenant_id", "status", "id") WHERE "completed_at" IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX "IDX_tasks_created" ON "tasks" ("created_at")`);
    await q.query(`CREATE INDEX "IDX_tasks_status_created" ON "tasks" ("status", "created_at")`);
    await q.query(`CREATE INDEX "IDX_tasks_completed" ON "tasks" ("completed_at") WHERE "completed_at" IS NOT NULL`);
    await q.query(`CREATE INDEX "IDX_tasks_tenant_created" ON "tasks" ("tenant_id", "created_at")`);
    for (const name of ['created', 'priority', 'started', 'unstarted', 'completed', 'uncompleted'])
      await q.query(`DROP INDEX "IDX_tasks_list_${name}"`);
  }
}
