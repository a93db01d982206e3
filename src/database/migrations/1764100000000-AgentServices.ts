import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agent services (seed 003): the registry, its health-check history and stored statistics
 * samples behind /stats/timeseries. Logs and live connections are kept in memory by the hub
 * process that holds them.
 */
export class AgentServices1764100000000 implements MigrationInterface {
  name = 'AgentServices1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "agent_services" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "description" text,
        "kind" text NOT NULL,
        "agent_factory_path" text,
        "command" text,
        "args" text[] NOT NULL DEFAULT '{}',
        "cwd" text,
        "env" jsonb NOT NULL DEFAULT '{}',
        "host" text NOT NULL DEFAULT '127.0.0.1',
        "port" integer,
        "runtime_port" integer,
        "endpoint" text,
        "health_check" jsonb NOT NULL DEFAULT '{}',
        "tags" text[] NOT NULL DEFAULT '{}',
        "config" jsonb NOT NULL DEFAULT '{}',
        "weight" integer NOT NULL DEFAULT 1,
        "status" text NOT NULL DEFAULT 'stopped',
        "desired_state" text NOT NULL DEFAULT 'stopped',
        "health_status" text NOT NULL DEFAULT 'unknown',
        "health_checked_at" timestamptz,
        "health_response_ms" real,
        "health_message" text,
        "pid" integer,
        "owner_instance" text,
        "owner_seen_at" timestamptz,
        "restart_count" integer NOT NULL DEFAULT 0,
        "last_exit_code" integer,
        "last_error" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        "started_at" timestamptz,
        "stopped_at" timestamptz,
        CONSTRAINT "PK_agent_services" PRIMARY KEY ("id"),
        CONSTRAINT "UQ_agent_services_name" UNIQUE ("name"),
        CONSTRAINT "CHK_agent_services_kind" CHECK ("kind" IN ('managed', 'external')),
        CONSTRAINT "CHK_agent_services_status" CHECK ("status" IN ('stopped', 'starting', 'running', 'stopping', 'error')),
        CONSTRAINT "CHK_agent_services_desired" CHECK ("desired_state" IN ('running', 'stopped')),
        CONSTRAINT "CHK_agent_services_health" CHECK ("health_status" IN ('healthy', 'unhealthy', 'unknown'))
      )`);
    await q.query(`CREATE INDEX "IDX_agent_services_tags" ON "agent_services" USING gin ("tags")`);
    await q.query(`
      CREATE TABLE "service_health_checks" (
        "id" bigserial NOT NULL,
        "service_id" uuid NOT NULL REFERENCES "agent_services" ("id") ON DELETE CASCADE,
        "status" text NOT NULL,
        "response_time_ms" real,
        "message" text,
        "checked_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_service_health_checks" PRIMARY KEY ("id")
      )`);
    await q.query(
      `CREATE INDEX "IDX_service_health_checks_service" ON "service_health_checks" ("service_id", "checked_at" DESC)`,
    );
    await q.query(`
      CREATE TABLE "service_stat_samples" (
        "id" bigserial NOT NULL,
        "service_id" uuid REFERENCES "agent_services" ("id") ON DELETE CASCADE,
        "sampled_at" timestamptz NOT NULL DEFAULT now(),
        "connections" integer NOT NULL,
        "sessions" integer NOT NULL,
        "opened" integer NOT NULL,
        "messages" integer NOT NULL,
        "errors" integer NOT NULL,
        "response_time_ms" real,
        CONSTRAINT "PK_service_stat_samples" PRIMARY KEY ("id")
      )`);
    await q.query(
      `CREATE INDEX "IDX_service_stat_samples_time" ON "service_stat_samples" ("sampled_at", "service_id")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "service_stat_samples"`);
    await q.query(`DROP TABLE "service_health_checks"`);
    await q.query(`DROP TABLE "agent_services"`);
  }
}
