import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Task events are the hottest insert (two or more per task). The Tenants migration had them
 * take the parent task's tenant through a row trigger whenever the system ('*') wrote them:
 * a plpgsql call and an index lookup per event, about 13 µs each, on the dispatcher's and
 * every unauthenticated path. The repositories now write `tenant_id` from the task row they
 * just changed, so the trigger only has to run when an insert names no tenant: under '*'
 * (and '') the column's default is now NULL, and the trigger fires on NULL alone. Under a
 * tenant's context the default is still that tenant; row-level security checks the result
 * exactly as before.
 */
export class TaskEventsTenantGiven1765500000000 implements MigrationInterface {
  name = 'TaskEventsTenantGiven1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION taskhub_context_tenant() RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT NULLIF(NULLIF(current_setting('taskhub.tenant_id', true), '*'), '') $$`);
    await q.query(`ALTER TABLE "task_events" ALTER "tenant_id" SET DEFAULT taskhub_context_tenant()`);
    await q.query(`DROP TRIGGER "TRG_task_events_tenant" ON "task_events"`);
    await q.query(
      `CREATE TRIGGER "TRG_task_events_tenant" BEFORE INSERT ON "task_events" FOR EACH ROW
       WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION taskhub_tenant_from_task()`,
    );
    await q.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskhub_app') THEN
          GRANT EXECUTE ON FUNCTION taskhub_context_tenant() TO taskhub_app;
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER "TRG_task_events_tenant" ON "task_events"`);
    await q.query(
      `CREATE TRIGGER "TRG_task_events_tenant" BEFORE INSERT ON "task_events" FOR EACH ROW
       WHEN (taskhub_current_tenant() = '*') EXECUTE FUNCTION taskhub_tenant_from_task()`,
    );
    await q.query(`ALTER TABLE "task_events" ALTER "tenant_id" SET DEFAULT taskhub_current_tenant_for_insert()`);
    await q.query(`DROP FUNCTION taskhub_context_tenant()`);
  }
}
