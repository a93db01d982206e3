import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Seed 003 stats that every hub process shares and that survive a restart: per-service
 * counters (connections, completed sessions, errors) and the proxy's sessions (which service a
 * session is on, how many connections it has open, when it ended). `*_today` and
 * `total_sessions` are derived from these, so `completed ≤ total` holds by construction.
 */
export class AgentSessionStats1764900000000 implements MigrationInterface {
  name = 'AgentSessionStats1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "agent_service_counters" (
        "service_id" uuid NOT NULL,
        "total_connections" bigint NOT NULL DEFAULT 0,
        "peak_connections" integer NOT NULL DEFAULT 0,
        "completed_sessions" bigint NOT NULL DEFAULT 0,
        "session_seconds" double precision NOT NULL DEFAULT 0,
        "errors" bigint NOT NULL DEFAULT 0,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_agent_service_counters" PRIMARY KEY ("service_id"),
        CONSTRAINT "FK_agent_service_counters_service" FOREIGN KEY ("service_id") REFERENCES "agent_services" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE "agent_sessions" (
        "session_id" text NOT NULL,
        "service_id" uuid,
        "open_connections" integer NOT NULL DEFAULT 0,
        "instance_id" text,
        "started_at" timestamptz NOT NULL DEFAULT now(),
        "ended_at" timestamptz,
        CONSTRAINT "PK_agent_sessions" PRIMARY KEY ("session_id"),
        CONSTRAINT "CHK_agent_sessions_open" CHECK ("open_connections" >= 0),
        CONSTRAINT "FK_agent_sessions_service" FOREIGN KEY ("service_id") REFERENCES "agent_services" ("id") ON DELETE SET NULL
      )`);
    await q.query(
      `CREATE INDEX "IDX_agent_sessions_open" ON "agent_sessions" ("service_id") WHERE "open_connections" > 0`,
    );
    await q.query(`CREATE INDEX "IDX_agent_sessions_ended" ON "agent_sessions" ("ended_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "agent_sessions"`);
    await q.query(`DROP TABLE "agent_service_counters"`);
  }
}
