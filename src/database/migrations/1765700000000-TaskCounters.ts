import type { MigrationInterface, QueryRunner } from 'typeorm';

const FINISHED = `('completed', 'failed', 'cancelled', 'timed_out')`;

/** When a finished task finished (the statistics series' bucket time). */
const FINISHED_AT = (t: string): string =>
  `date_trunc('minute', COALESCE(${t}.completed_at, ${t}.cancelled_at, ${t}.updated_at))`;
/** Start-to-completion time of a completed task, ms (what avg_processing_ms averages). */
const RUN_MS = (t: string): string =>
  `CASE WHEN ${t}.status = 'completed' AND ${t}.started_at IS NOT NULL AND ${t}.completed_at IS NOT NULL
        THEN (extract(epoch FROM ${t}.completed_at - ${t}.started_at) * 1000)::bigint END`;

/** Finish deltas of the rows in `rel` (a transition table or a CTE) that are finished. */
const FINISH_DELTAS = (rel: string, also = 'true'): string =>
  `INSERT INTO task_finish_deltas (tenant_id, minute, status, node_id, n, run_ms, runs)
   SELECT f.tenant_id, ${FINISHED_AT('f')}, f.status, f.node_id, count(*), COALESCE(sum(${RUN_MS('f')}), 0), count(${RUN_MS('f')})
     FROM ${rel} f WHERE f.status IN ${FINISHED} AND ${also} GROUP BY 1, 2, 3, 4`;

const MATCHES = `((SELECT taskhub_current_tenant()) = '*' OR "tenant_id" = (SELECT taskhub_current_tenant()))`;
const COUNTER_TABLES = [
  'task_counts',
  'task_count_deltas',
  'task_finish_minutes',
  'task_finish_deltas',
  'task_node_finishes',
];

/**
 * Counts that don't scan (issue 25, docs/database.md "Task counters"). Every insert, update,
 * delete and truncate of `tasks` records what it changed — tasks per (tenant, state, priority)
 * and tasks finished per (tenant, minute, state) — in the same transaction, so a reader's one
 * snapshot always sums to the exact `count(*)`.
 *
 * The triggers only ever INSERT into append-only delta tables (grouped per statement: a batch
 * dispatch of 100 tasks writes two rows), never UPDATE a shared counter row: a hot counter
 * row would serialise every completion of the hub behind one row lock, and two transactions
 * touching two such rows in opposite orders would deadlock. A fold (`taskhub_fold_task_counts`,
 * run every second by one hub at a time) moves the deltas into `task_counts` and
 * `task_finish_minutes` in one transaction; readers sum the folded rows and the few deltas
 * not folded yet.
 */
export class TaskCounters1765700000000 implements MigrationInterface {
  name = 'TaskCounters1765700000000';

  async up(q: QueryRunner): Promise<void> {
    // No foreign keys: a tenant's delete cascades into tasks, whose trigger then writes the
    // negative deltas of that very tenant.
    await q.query(`
      CREATE TABLE "task_counts" (
        "tenant_id" text NOT NULL,
        "status" text NOT NULL,
        "priority" smallint NOT NULL,
        "n" bigint NOT NULL,
        CONSTRAINT "PK_task_counts" PRIMARY KEY ("tenant_id", "status", "priority")
      )`);
    await q.query(`
      CREATE TABLE "task_count_deltas" (
        "tenant_id" text NOT NULL,
        "status" text NOT NULL,
        "priority" smallint NOT NULL,
        "n" bigint NOT NULL
      )`);
    await q.query(`
      CREATE TABLE "task_finish_minutes" (
        "tenant_id" text NOT NULL,
        "minute" timestamptz NOT NULL,
        "completed" bigint NOT NULL DEFAULT 0,
        "failed" bigint NOT NULL DEFAULT 0,
        "cancelled" bigint NOT NULL DEFAULT 0,
        "timed_out" bigint NOT NULL DEFAULT 0,
        "run_ms" bigint NOT NULL DEFAULT 0,
        "runs" bigint NOT NULL DEFAULT 0,
        CONSTRAINT "PK_task_finish_minutes" PRIMARY KEY ("tenant_id", "minute")
      )`);
    await q.query(`CREATE INDEX "IDX_task_finish_minutes_minute" ON "task_finish_minutes" ("minute")`);
    await q.query(`
      CREATE TABLE "task_finish_deltas" (
        "tenant_id" text NOT NULL,
        "minute" timestamptz NOT NULL,
        "status" text NOT NULL,
        "node_id" text,
        "n" bigint NOT NULL,
        "run_ms" bigint NOT NULL,
        "runs" bigint NOT NULL
      )`);
    // Tasks each node finished, over its life (not lowered when retention removes the tasks).
    await q.query(`
      CREATE TABLE "task_node_finishes" (
        "tenant_id" text NOT NULL,
        "node_id" text NOT NULL,
        "completed" bigint NOT NULL DEFAULT 0,
        "failed" bigint NOT NULL DEFAULT 0,
        "cancelled" bigint NOT NULL DEFAULT 0,
        "timed_out" bigint NOT NULL DEFAULT 0,
        CONSTRAINT "PK_task_node_finishes" PRIMARY KEY ("node_id", "tenant_id")
      )`);

    await q.query(`
      CREATE FUNCTION taskhub_task_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, count(*) FROM new_tasks GROUP BY 1, 2, 3;
        ${FINISH_DELTAS('new_tasks')};
        RETURN NULL;
      END $$`);
    // Only rows whose state, priority or tenant changed count; a task that finishes (again, after
    // a retry) counts in the minute it finished.
    await q.query(`
      CREATE FUNCTION taskhub_task_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        WITH moved AS MATERIALIZED (
          SELECT o.tenant_id AS was_tenant, o.status AS was_status, o.priority AS was_priority, t.*
            FROM old_tasks o JOIN new_tasks t USING (id)
           WHERE (o.status, o.priority, o.tenant_id) IS DISTINCT FROM (t.status, t.priority, t.tenant_id)
        ), counted AS (
          INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, sum(n) FROM (
            SELECT was_tenant AS tenant_id, was_status AS status, was_priority AS priority, -1 AS n FROM moved
            UNION ALL
            SELECT tenant_id, status, priority, 1 FROM moved
          ) d GROUP BY 1, 2, 3 HAVING sum(n) <> 0
        )
        ${FINISH_DELTAS('moved', 'f.was_status IS DISTINCT FROM f.status')};
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE FUNCTION taskhub_task_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, -count(*) FROM old_tasks GROUP BY 1, 2, 3;
        RETURN NULL;
      END $$`);
    // A truncate of tasks (tests, an operator starting over) empties the counts with it. The
    // tables in the order the fold locks them (each delta table before what it folds into), so a
    // truncate and a fold wait for each other instead of deadlocking.
    await q.query(`
      CREATE FUNCTION taskhub_task_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        TRUNCATE task_count_deltas, task_counts, task_finish_deltas, task_finish_minutes, task_node_finishes;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER "tasks_counts_insert" AFTER INSERT ON "tasks" REFERENCING NEW TABLE AS new_tasks
      FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_insert()`);
    await q.query(`
      CREATE TRIGGER "tasks_counts_update" AFTER UPDATE ON "tasks" REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
      FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_update()`);
    await q.query(`
      CREATE TRIGGER "tasks_counts_delete" AFTER DELETE ON "tasks" REFERENCING OLD TABLE AS old_tasks
      FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_delete()`);
    await q.query(`
      CREATE TRIGGER "tasks_counts_truncate" AFTER TRUNCATE ON "tasks"
      FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_truncate()`);

    // The fold: one hub at a time (the others skip a round); the deltas a snapshot sees move in
    // one transaction, so a reader sees them either as deltas or as folded, never both or neither.
    await q.query(`
      CREATE FUNCTION taskhub_fold_task_counts() RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE folded bigint := 0; more bigint;
      BEGIN
        IF NOT pg_try_advisory_xact_lock(hashtext('taskhub_fold_task_counts')) THEN RETURN 0; END IF;
        WITH d AS (DELETE FROM task_count_deltas RETURNING tenant_id, status, priority, n)
        INSERT INTO task_counts AS c (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, sum(n) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (tenant_id, status, priority) DO UPDATE SET n = c.n + EXCLUDED.n;
        GET DIAGNOSTICS folded = ROW_COUNT;
        WITH d AS (DELETE FROM task_finish_deltas RETURNING *),
        minutes AS (
          INSERT INTO task_finish_minutes AS m (tenant_id, minute, completed, failed, cancelled, timed_out, run_ms, runs)
            SELECT tenant_id, minute,
                   COALESCE(sum(n) FILTER (WHERE status = 'completed'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'failed'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'cancelled'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'timed_out'), 0),
                   sum(run_ms), sum(runs)
              FROM d GROUP BY 1, 2 ORDER BY 1, 2
          ON CONFLICT (tenant_id, minute) DO UPDATE SET
            completed = m.completed + EXCLUDED.completed, failed = m.failed + EXCLUDED.failed,
            cancelled = m.cancelled + EXCLUDED.cancelled, timed_out = m.timed_out + EXCLUDED.timed_out,
            run_ms = m.run_ms + EXCLUDED.run_ms, runs = m.runs + EXCLUDED.runs
          RETURNING 1
        )
        INSERT INTO task_node_finishes AS f (tenant_id, node_id, completed, failed, cancelled, timed_out)
          SELECT tenant_id, node_id,
                 COALESCE(sum(n) FILTER (WHERE status = 'completed'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'failed'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'cancelled'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'timed_out'), 0)
            FROM d WHERE node_id IS NOT NULL GROUP BY 1, 2 ORDER BY 2, 1
        ON CONFLICT (node_id, tenant_id) DO UPDATE SET
          completed = f.completed + EXCLUDED.completed, failed = f.failed + EXCLUDED.failed,
          cancelled = f.cancelled + EXCLUDED.cancelled, timed_out = f.timed_out + EXCLUDED.timed_out;
        GET DIAGNOSTICS more = ROW_COUNT; -- finish rows by node; by minute is about as many
        DELETE FROM task_counts WHERE n = 0;
        RETURN folded + more;
      END $$`);

    // What is there now.
    await q.query(`
      INSERT INTO task_counts (tenant_id, status, priority, n)
      SELECT tenant_id, status, priority, count(*) FROM tasks GROUP BY 1, 2, 3`);
    await q.query(`
      INSERT INTO task_finish_deltas (tenant_id, minute, status, node_id, n, run_ms, runs)
      SELECT f.tenant_id, ${FINISHED_AT('f')}, f.status, f.node_id, count(*), COALESCE(sum(${RUN_MS('f')}), 0), count(${RUN_MS('f')})
        FROM tasks f WHERE f.status IN ${FINISHED} GROUP BY 1, 2, 3, 4`);
    await q.query(`SELECT taskhub_fold_task_counts()`);

    // The deltas are written and emptied every second, like a queue table: vacuumed as soon as
    // 10,000 rows are dead (not a fraction of the table), so that after a burst (a 10 M row load
    // left 830 ms of dead pages for every statistics read) the space is reclaimed and the empty
    // tail cut off within autovacuum's next round, not when the table has grown tenfold.
    for (const table of ['task_count_deltas', 'task_finish_deltas'])
      await q.query(
        `ALTER TABLE "${table}" SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
           autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000)`,
      );

    for (const table of COUNTER_TABLES) {
      await q.query(`CREATE POLICY "tenant_isolation" ON "${table}" USING ${MATCHES} WITH CHECK ${MATCHES}`);
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['insert', 'update', 'delete', 'truncate'])
      await q.query(`DROP TRIGGER "tasks_counts_${t}" ON "tasks"`);
    for (const f of ['insert', 'update', 'delete', 'truncate'])
      await q.query(`DROP FUNCTION taskhub_task_counts_${f}()`);
    await q.query(`DROP FUNCTION taskhub_fold_task_counts()`);
    for (const table of COUNTER_TABLES) await q.query(`DROP TABLE "${table}"`);
  }
}
