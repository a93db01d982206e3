import pg from 'pg';
import type { DataSource } from 'typeorm';

/** pg_advisory_lock key of the retention cleaner (the migration lock is 7_346_251_009). */
const RETENTION_LOCK = 7_346_251_010;

/**
 * Runs `fn` while this process holds the cluster-wide retention lock, or answers undefined at
 * once when another hub holds it. The lock lives on a connection of its own (not the pool's),
 * so it is held however the batches get their connections, and it goes with the connection
 * when this process dies.
 */
export async function withRetentionLock<T>(db: DataSource, fn: () => Promise<T>): Promise<T | undefined> {
  const client = new pg.Client({
    connectionString: (db.options as { url?: string }).url,
    application_name: 'taskhub-retention',
  });
  client.on('error', () => undefined); // a dead connection fails the query below or releases the lock
  await client.connect();
  try {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK]);
    if (!rows[0].ok) return undefined;
    return await fn();
  } finally {
    await client.end().catch(() => undefined); // ending the session releases the lock
  }
}
