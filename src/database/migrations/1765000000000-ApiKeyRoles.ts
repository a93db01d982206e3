import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A key holds one or more roles (seed 002's clients create, pull and complete with one key).
 * `role` stays as the first of them, for readers of the previous release.
 */
export class ApiKeyRoles1765000000000 implements MigrationInterface {
  name = 'ApiKeyRoles1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "api_keys" ADD "roles" text[]`);
    await q.query(`UPDATE "api_keys" SET "roles" = ARRAY["role"]`);
    await q.query(`ALTER TABLE "api_keys" ALTER "roles" SET NOT NULL`);
    await q.query(
      `ALTER TABLE "api_keys" ADD CONSTRAINT "CHK_api_keys_roles" CHECK (cardinality("roles") >= 1 AND "roles" <@ ARRAY['admin', 'client', 'worker']::text[] AND "roles"[1] = "role")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "api_keys" DROP CONSTRAINT "CHK_api_keys_roles"`);
    await q.query(`ALTER TABLE "api_keys" DROP COLUMN "roles"`);
  }
}
