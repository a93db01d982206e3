import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Periodic } from '../../common/periodic.js';
import { AppConfig } from '../../config/app-config.js';
import { runAsSystem } from '../../database/tenant-context.js';
import { withRetentionLock } from './retention-lock.js';
import { RetentionMetrics } from './retention-metrics.js';
import type { RetentionBatch } from './retention-policy.js';
import { RetentionRegistry } from './retention-registry.js';

/** What one pass removed, by table; undefined when another hub held the lock. */
export type RetentionReport = RetentionBatch;

/**
 * The retention cleaner (docs/retention.md): every RETENTION_INTERVAL_MS one hub (whichever
 * takes the advisory lock; the others skip that pass) runs every registered policy in batches
 * of RETENTION_BATCH_SIZE rows. Each batch is one statement and so one short transaction, and
 * after each the cleaner rests as long as the batch took: it never holds more than one batch's
 * locks, and never takes more than half of one database connection's time.
 */
@Injectable()
export class RetentionCleaner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Retention');
  private readonly periodic = new Periodic('retention', this.logger, () => this.runOnce());
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly db: DataSource,
    private readonly registry: RetentionRegistry,
    private readonly metrics: RetentionMetrics,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.RETENTION_INTERVAL_MS > 0) this.periodic.start(this.config.RETENTION_INTERVAL_MS);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.periodic.stop();
  }

  /** One pass now, as the system (every tenant's rows). */
  runOnce(): Promise<RetentionReport | undefined> {
    return runAsSystem(() => withRetentionLock(this.db, () => this.pass()));
  }

  private async pass(): Promise<RetentionReport> {
    const started = Date.now();
    const removed: RetentionReport = {};
    for (const policy of this.registry.all()) {
      if (this.stopping) break;
      try {
        let mark = Date.now();
        for await (const batch of policy.batches(this.config.RETENTION_BATCH_SIZE)) {
          const took = Date.now() - mark;
          for (const [table, n] of Object.entries(batch)) {
            removed[table] = (removed[table] ?? 0) + n;
            this.metrics.deleted.inc({ table }, n);
          }
          if (this.stopping) break;
          await sleep(Math.min(1000, took)); // rest as long as the batch took
          mark = Date.now();
        }
      } catch (e) {
        // One policy failing (a table locked for a migration, an outage) does not stop the others.
        this.metrics.errors.inc({ policy: policy.name });
        this.logger.warn({ err: e }, `retention of ${policy.name} failed; the next pass tries again`);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    this.metrics.lastRun.set(Date.now() / 1000);
    this.metrics.lastRunDuration.set(seconds);
    const total = Object.values(removed).reduce((a, b) => a + b, 0);
    if (total > 0) this.logger.log({ removed, seconds }, `retention removed ${total} rows in ${seconds.toFixed(1)} s`);
    return removed;
  }
}
