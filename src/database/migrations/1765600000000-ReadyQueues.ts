import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ready work in queues by what decides who may take it (issue 23): the dispatcher picks, for
 * each class of nodes with room, the best tasks of the queues that class may take — tenant,
 * required tags ⊆ the class's tags, type among its capabilities — each an index range in
 * priority order, so no backlog a class cannot take is ever read past.
 *
 * The queue key is `tag_key`, the task's required tags sorted, deduplicated and joined with
 * U+001F (kept by a trigger, so no insert can leave it out), not the `text[]` itself: under row-level security PostgreSQL only
 * uses leakproof operators as index conditions, and text's are while arrays' are not (with the
 * array in the key, every round filtered the whole backlog instead of seeking).
 *
 * Tasks asked for a given node have their own index, read per open node and its tenant.
 */
export class ReadyQueues1765600000000 implements MigrationInterface {
  name = 'ReadyQueues1765600000000';

  async up(q: QueryRunner): Promise<void> {
    // Kept by a trigger that fires on insert and on a change of required_tags only (a generated
    // column would be computed again on every status change of every task).
    await q.query(`ALTER TABLE "tasks" ADD "tag_key" text NOT NULL DEFAULT ''`);
    await q.query(
      `CREATE FUNCTION taskhub_tasks_tag_key() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.tag_key := CASE WHEN cardinality(NEW.required_tags) = 0 THEN ''
           ELSE array_to_string(ARRAY(SELECT DISTINCT u COLLATE "C" FROM unnest(NEW.required_tags) u ORDER BY 1), E'\\x1f') END;
         RETURN NEW;
       END $$`,
    );
    await q.query(
      `CREATE TRIGGER "tasks_tag_key" BEFORE INSERT OR UPDATE OF "required_tags" ON "tasks"
       FOR EACH ROW EXECUTE FUNCTION taskhub_tasks_tag_key()`,
    );
    await q.query(`UPDATE "tasks" SET "required_tags" = "required_tags" WHERE "required_tags" <> '{}'`);
    await q.query(
      `CREATE INDEX "IDX_tasks_ready_queue" ON "tasks" ("tenant_id", "tag_key", "type", "priority" DESC, "created_at", "id")
       WHERE "status" = 'pending' AND "target_node_id" IS NULL`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_ready_target" ON "tasks" ("target_node_id", "tenant_id", "priority" DESC, "created_at", "id")
       WHERE "status" = 'pending' AND "target_node_id" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_ready_target"`);
    await q.query(`DROP INDEX "IDX_tasks_ready_queue"`);
    await q.query(`DROP TRIGGER "tasks_tag_key" ON "tasks"`);
    await q.query(`DROP FUNCTION taskhub_tasks_tag_key()`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "tag_key"`);
  }
}
