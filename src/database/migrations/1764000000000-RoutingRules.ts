import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Routing rules: which services or nodes a connection or task goes to, and by which strategy. */
export class RoutingRules1764000000000 implements MigrationInterface {
  name = 'RoutingRules1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "routing_rules" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "description" text,
        "priority" integer NOT NULL DEFAULT 0,
        "enabled" boolean NOT NULL DEFAULT true,
        "conditions" jsonb NOT NULL DEFAULT '[]',
        "target_strategy" text NOT NULL DEFAULT 'least_connections',
        "target_tags" text[] NOT NULL DEFAULT '{}',
        "target_service" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_routing_rules" PRIMARY KEY ("id"),
        CONSTRAINT "UQ_routing_rules_name" UNIQUE ("name"),
        CONSTRAINT "CHK_routing_rules_strategy"
          CHECK ("target_strategy" IN ('round_robin', 'least_connections', 'random', 'weighted', 'hash'))
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "routing_rules"`);
  }
}
