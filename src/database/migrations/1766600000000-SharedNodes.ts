import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A node registered with a global key may serve every tenant (`shared: true` at registration,
 * issue 29, docs/flow-control.md "Fairness"): the dispatcher gives it any tenant's ready work,
 * interleaving the tenants by weight. Every node from before serves its own tenant only.
 */
export class SharedNodes1766600000000 implements MigrationInterface {
  name = 'SharedNodes1766600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "nodes" ADD "shared" boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "nodes" DROP COLUMN "shared"`);
  }
}
