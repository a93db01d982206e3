import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A task keeps the W3C trace context it was submitted in (issue 28, docs/observability.md):
 * `traceparent` is its intake span's, in the submitter's trace; `tracestate` the caller's, passed
 * on. Null for tasks from before: they are shown without a trace id and send none to devices.
 */
export class TaskTraceContext1766300000000 implements MigrationInterface {
  name = 'TaskTraceContext1766300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" ADD "traceparent" text, ADD "tracestate" text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "tracestate", DROP COLUMN "traceparent"`);
  }
}
