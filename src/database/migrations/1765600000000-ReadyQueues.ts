import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ready work in queues by what decides who may take it (issue 23): the dispatcher picks, for
 * each class of nodes with room, the best tasks of the queues that class may take — tenant,
 * required tags ⊆ the class's tags, type among its capabilities — each an index range in
 * priority order, so no backlog a class cannot take is ever read past. Tasks asked for a
 * given node have their own index, read per open node.
 */
export class ReadyQueues1765600000000 implements MigrationInterface {
  name = 'ReadyQueues1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "IDX_tasks_ready_queue" ON "tasks" ("tenant_id", "required_tags", "type", "priority" DESC, "created_at", "id")
       WHERE "status" = 'pending' AND "target_node_id" IS NULL`,
    );
    await q.query(
      `CREATE INDEX "IDX_tasks_ready_target" ON "tasks" ("target_node_id", "priority" DESC, "created_at", "id")
       WHERE "status" = 'pending' AND "target_node_id" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_tasks_ready_target"`);
    await q.query(`DROP INDEX "IDX_tasks_ready_queue"`);
  }
}
