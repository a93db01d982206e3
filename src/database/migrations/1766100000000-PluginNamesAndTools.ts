import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Plugin names as Apex Bridge spells them (`FileOrganizer`): kept as written, but one name per
 * tenant whatever its case, so `fileorganizer` in a task or a callback path finds `FileOrganizer`
 * and cannot be registered beside it (docs/plugin-callbacks.md). Lookups read `lower(name)`,
 * which this index serves. And the tools a plugin declares: OpenAI function definitions,
 * normalised to `{name, description, parameters}`.
 */
export class PluginNamesAndTools1766100000000 implements MigrationInterface {
  name = 'PluginNamesAndTools1766100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "plugins" DROP CONSTRAINT "UQ_plugins_tenant_name"`);
    await q.query(`CREATE UNIQUE INDEX "UQ_plugins_tenant_lower_name" ON "plugins" ("tenant_id", lower("name"))`);
    await q.query(`ALTER TABLE "plugins" ADD "tools" jsonb NOT NULL DEFAULT '[]'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "plugins" DROP COLUMN "tools"`);
    await q.query(`DROP INDEX "UQ_plugins_tenant_lower_name"`);
    await q.query(`ALTER TABLE "plugins" ADD CONSTRAINT "UQ_plugins_tenant_name" UNIQUE ("tenant_id", "name")`);
  }
}
