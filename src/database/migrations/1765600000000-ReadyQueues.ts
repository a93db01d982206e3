import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ready work in queues by what decides who may take it (issue 23): the dispatcher picks, for
 * each class of nodes with room, the best tasks of the queues that class may take — tenant,
 * required tags ⊆ the class's tags, type among its capabilities — each an index range in
 * priority order, so no backlog a class cannot take is ever read past.
 *
 * The queue key is `tag_key`, the task's required tags sorted, deduplicated and joined with
 * U+001F (a column generated from them, so no insert can leave it out), not the `text[]` itself: under row-level security PostgreSQL only
 * uses leakproof operators as index conditions, and text's are while arrays' are not (with the
 * array in the key, every round filtered the whole backlog instead of seeking).
 *
 * Tasks asked for a given node have their own index, read per open node and its tenant.
 */
export class ReadyQueues1765600000000 implements MigrationInterface {
  name = 'ReadyQueues1765600000000';

  async up(q: QueryRunner): Promise<void> {
    // Immutable (so a generated column may use it): sorted in "C" order, whatever the database's collation.
    await q.query(
      `CREATE FUNCTION taskhub_tag_key(tags text[]) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $$ SELECT array_to_string(ARRAY(SELECT DISTINCT u COLLATE "C" FROM unnest(tags) u ORDER BY 1), E'\\x1f') $$`,
    );
    await q.query(
      `ALTER TABLE "tasks" ADD "tag_key" text GENERATED ALWAYS AS (taskhub_tag_key("required_tags")) STORED`,
    );
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
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "tag_key"`);
    await q.query(`DROP FUNCTION taskhub_tag_key(text[])`);
  }
}
