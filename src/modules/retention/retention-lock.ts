import type { DataSource } from 'typeorm';
import { withSessionAdvisoryLock } from '../../database/session-advisory-lock.js';

/** pg_advisory_lock key of the retention cleaner (the migration lock is 7_346_251_009). */
const RETENTION_LOCK = 7_346_251_010;

/** Runs `fn` while this process holds the cluster-wide retention lock; undefined when another hub does. */
export function withRetentionLock<T>(db: DataSource, fn: () => Promise<T>): Promise<T | undefined> {
  return withSessionAdvisoryLock(db, RETENTION_LOCK, 'taskhub-retention', fn);
}
