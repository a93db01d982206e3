import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Proxy session ids are the clients' own (`/ws?session_id=…`), so two tenants may both use
 * `s1`: the key of `agent_sessions` becomes (tenant_id, session_id), as service, rule and
 * plugin names are unique per tenant (docs/tenants.md).
 */
export class SessionsPerTenant1765300000000 implements MigrationInterface {
  name = 'SessionsPerTenant1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "agent_sessions" DROP CONSTRAINT "PK_agent_sessions"`);
    await q.query(
      `ALTER TABLE "agent_sessions" ADD CONSTRAINT "PK_agent_sessions" PRIMARY KEY ("tenant_id", "session_id")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // Fails if two tenants hold the same session id: drop those rows first (they are stats only).
    await q.query(`ALTER TABLE "agent_sessions" DROP CONSTRAINT "PK_agent_sessions"`);
    await q.query(`ALTER TABLE "agent_sessions" ADD CONSTRAINT "PK_agent_sessions" PRIMARY KEY ("session_id")`);
  }
}
