import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Hot settings changed at run time (PATCH /v1/config): one row per setting that overrides
 * its env/file/default value on every hub instance. The value is the typed JSON value.
 */
export class RuntimeSettings1764400000000 implements MigrationInterface {
  name = 'RuntimeSettings1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "runtime_settings" (
        "key" text NOT NULL,
        "value" jsonb NOT NULL,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        "updated_by" text,
        CONSTRAINT "PK_runtime_settings" PRIMARY KEY ("key")
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "runtime_settings"`);
  }
}
