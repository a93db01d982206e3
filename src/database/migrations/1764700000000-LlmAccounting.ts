import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * LLM accounting (docs/llm-accounting.md). `api_keys.limits` holds a key's optional limits (null:
 * unlimited). `llm_key_quota` is one row per limited key: the current per-minute window, the
 * current budget period and the parallel slots in flight (`in_flight`: reservation id → expiry in
 * epoch ms, so a slot of a process that died frees itself). `llm_usage` is one row per upstream
 * call, pruned by age (LLM_USAGE_RETENTION_DAYS).
 */
export class LlmAccounting1764700000000 implements MigrationInterface {
  name = 'LlmAccounting1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "api_keys" ADD "limits" jsonb`);
    await q.query(`
      CREATE TABLE "llm_key_quota" (
        "key_id" uuid NOT NULL,
        "window_start" timestamptz NOT NULL,
        "window_requests" integer NOT NULL DEFAULT 0,
        "window_tokens" bigint NOT NULL DEFAULT 0,
        "budget_start" timestamptz NOT NULL,
        "budget_tokens" bigint NOT NULL DEFAULT 0,
        "in_flight" jsonb NOT NULL DEFAULT '{}',
        CONSTRAINT "PK_llm_key_quota" PRIMARY KEY ("key_id"),
        CONSTRAINT "FK_llm_key_quota_key" FOREIGN KEY ("key_id") REFERENCES "api_keys" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE "llm_usage" (
        "id" bigserial NOT NULL,
        "request_id" text NOT NULL,
        "key_id" uuid,
        "node_id" text,
        "requested_model" text NOT NULL,
        "model" text NOT NULL,
        "provider" text NOT NULL,
        "status" text NOT NULL,
        "stream" boolean NOT NULL,
        "prompt_tokens" integer NOT NULL,
        "completion_tokens" integer NOT NULL,
        "ttft_ms" integer,
        "duration_ms" integer NOT NULL,
        "upstream_status" integer,
        "error" text,
        "started_at" timestamptz NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_llm_usage" PRIMARY KEY ("id")
      )`);
    await q.query(`CREATE INDEX "IDX_llm_usage_started" ON "llm_usage" ("started_at")`);
    await q.query(`CREATE INDEX "IDX_llm_usage_key_started" ON "llm_usage" ("key_id", "started_at")`);
    await q.query(`CREATE INDEX "IDX_llm_usage_request" ON "llm_usage" ("request_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "llm_usage"`);
    await q.query(`DROP TABLE "llm_key_quota"`);
    await q.query(`ALTER TABLE "api_keys" DROP COLUMN "limits"`);
  }
}
