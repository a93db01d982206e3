import type { PoolClient } from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';

/**
 * Runs a hot statement as a named prepared statement: PostgreSQL parses and plans it once per
 * connection instead of on every call (the dispatch round's CTEs took about 1 ms to plan each,
 * on the core the server shares with the hub). `on` is the data source, or the manager of an
 * open transaction (the statement then runs inside it). Same driver, same type parsing and
 * errors as `query()`.
 */
export async function prepared<T>(
  on: DataSource | EntityManager,
  name: string,
  text: string,
  values: unknown[],
): Promise<T[]> {
  const inTransaction = 'createQueryRunner' in on ? undefined : on.queryRunner;
  const runner: QueryRunner = inTransaction ?? ('createQueryRunner' in on ? on : on.connection).createQueryRunner();
  try {
    const client = (await runner.connect()) as PoolClient;
    const result = await client.query<T & object>({ name, text, values });
    return result.rows;
  } finally {
    if (!inTransaction) await runner.release();
  }
}
