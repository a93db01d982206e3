import pg from 'pg';
import type { DataSource } from 'typeorm';

/**
 * Runs `fn` while this process holds the cluster-wide advisory lock `key`, or answers undefined
 * at once when another process holds it. The lock lives on a connection of its own (not the
 * pool's), so it is held however `fn` gets its connections, and it goes with the connection
 * when this process dies.
 */
export async function withSessionAdvisoryLock<T>(
  db: DataSource,
  key: number,
  applicationName: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  const client = new pg.Client({
    connectionString: (db.options as { url?: string }).url,
    application_name: applicationName,
  });
  client.on('error', () => undefined); // a dead connection fails the query below or releases the lock
  await client.connect();
  try {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
    if (!rows[0].ok) return undefined;
    return await fn();
  } finally {
    await client.end().catch(() => undefined); // ending the session releases the lock
  }
}
