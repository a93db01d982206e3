import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Plugins and their signed callbacks (seed 001 `/plugin-callback/:plugin/:taskId`). The signing
 * secret is stored as is (HMAC needs it to verify); the bearer token only as its SHA-256, like
 * API keys. After a rotation the previous secret and token stay valid until `rotated_until`.
 * Deliveries remember each `webhook-id` per plugin for 24 h, so a redelivery is applied once.
 * `tasks.awaits_callback` marks a task created to wait for a plugin: it is never dispatched.
 */
export class Plugins1764500000000 implements MigrationInterface {
  name = 'Plugins1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "plugins" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "secret" text NOT NULL,
        "token_hash" text NOT NULL,
        "previous_secret" text,
        "previous_token_hash" text,
        "rotated_at" timestamptz,
        "rotated_until" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_plugins" PRIMARY KEY ("id"),
        CONSTRAINT "UQ_plugins_name" UNIQUE ("name")
      )`);
    await q.query(`
      CREATE TABLE "plugin_deliveries" (
        "plugin" text NOT NULL,
        "webhook_id" text NOT NULL,
        "task_id" uuid NOT NULL,
        "received_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_plugin_deliveries" PRIMARY KEY ("plugin", "webhook_id")
      )`);
    await q.query(`CREATE INDEX "IDX_plugin_deliveries_received" ON "plugin_deliveries" ("received_at")`);
    await q.query(`ALTER TABLE "tasks" ADD "awaits_callback" text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "awaits_callback"`);
    await q.query(`DROP TABLE "plugin_deliveries"`);
    await q.query(`DROP TABLE "plugins"`);
  }
}
