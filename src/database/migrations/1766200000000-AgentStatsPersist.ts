import type { MigrationInterface, QueryRunner } from 'typeorm';

const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;

/**
 * Seed 003 stats that were kept in one hub process's memory and so went back to 0 on a
 * restart (issue 26): relayed messages and the agents' response times per service (added
 * to `agent_service_counters` at each stats sample), and the day's peak of open proxied
 * connections (`agent_connection_peaks`, one row per tenant per UTC day, plus `tenant_id =
 * '*'` for every tenant together: a sum of per-tenant peaks is not the hub's peak). The
 * samples carry the agents' response times too, so the overview's average over the last
 * hour survives a restart.
 */
export class AgentStatsPersist1766200000000 implements MigrationInterface {
  name = 'AgentStatsPersist1766200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE "agent_service_counters"
        ADD "messages" bigint NOT NULL DEFAULT 0,
        ADD "responses" bigint NOT NULL DEFAULT 0,
        ADD "response_ms_sum" double precision NOT NULL DEFAULT 0`);
    await q.query(`
      ALTER TABLE "service_stat_samples"
        ADD "responses" integer NOT NULL DEFAULT 0,
        ADD "response_ms_sum" double precision NOT NULL DEFAULT 0`);
    // No foreign key to tenants: the '*' row belongs to none (task_counts does the same).
    await q.query(`
      CREATE TABLE "agent_connection_peaks" (
        "tenant_id" text NOT NULL,
        "day" date NOT NULL,
        "peak" integer NOT NULL DEFAULT 0,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_agent_connection_peaks" PRIMARY KEY ("tenant_id", "day")
      )`);
    await q.query(
      `CREATE POLICY "tenant_isolation" ON "agent_connection_peaks" USING ${MATCHES} WITH CHECK ${MATCHES}`,
    );
    await q.query(`ALTER TABLE "agent_connection_peaks" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "agent_connection_peaks" FORCE ROW LEVEL SECURITY`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "agent_connection_peaks"`);
    await q.query(`ALTER TABLE "service_stat_samples" DROP "responses", DROP "response_ms_sum"`);
    await q.query(`ALTER TABLE "agent_service_counters" DROP "messages", DROP "responses", DROP "response_ms_sum"`);
  }
}
