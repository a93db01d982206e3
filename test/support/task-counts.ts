import type pg from 'pg';

/** A pg client (a superuser's) or the hub's DataSource outside any tenant context (the system). */
type Queryable = Pick<pg.Client, 'query'> | { query(sql: string): Promise<unknown[]> };

/**
 * Where the task counters (migration 1765700000000-TaskCounters) disagree with `count(*)` per
 * tenant, state and priority: `{ 'tenant/state/priority': { counted, actual } }`, empty when
 * they agree. Both are read in one snapshot.
 */
interface MismatchRow {
  k: string;
  counted: number;
  actual: number;
}

export async function counterMismatches(db: Queryable): Promise<Record<string, { counted: number; actual: number }>> {
  const result = (await (db as { query(sql: string): Promise<unknown> }).query(
    `WITH counted AS (
       SELECT tenant_id, status, priority, sum(n)::int AS n
         FROM (SELECT tenant_id, status, priority, n FROM task_counts
               UNION ALL SELECT tenant_id, status, priority, n FROM task_count_deltas) c
        GROUP BY 1, 2, 3
     ), actual AS (
       SELECT tenant_id, status, priority, count(*)::int AS n FROM tasks GROUP BY 1, 2, 3
     )
     SELECT concat_ws('/', COALESCE(c.tenant_id, a.tenant_id), COALESCE(c.status, a.status),
                      COALESCE(c.priority, a.priority)) AS k,
            COALESCE(c.n, 0) AS counted, COALESCE(a.n, 0) AS actual
       FROM counted c FULL JOIN actual a USING (tenant_id, status, priority)
      WHERE COALESCE(c.n, 0) <> COALESCE(a.n, 0)`,
  )) as MismatchRow[] | { rows: MismatchRow[] };
  const rows = Array.isArray(result) ? result : result.rows;
  return Object.fromEntries(rows.map((r) => [r.k, { counted: r.counted, actual: r.actual }]));
}
