import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { TaskCountsRepository } from './task-counts.repository.js';

/** How often the deltas are folded: what a reader sums beyond the folded rows is about this much work. */
const FOLD_INTERVAL_MS = 1000;
/** Per-minute finish counts are kept as long as the longest statistics period (90 days). */
const FINISHED_MINUTES_DAYS = 90;
const TRIM_EVERY_FOLDS = 3600;
/** deadlock_detected, lock_not_available. */
const LOST_TO_A_LOCK = new Set(['40P01', '55P03']);
const sqlState = (e: unknown): string | undefined =>
  (e as { driverError?: { code?: string }; code?: string }).driverError?.code ?? (e as { code?: string }).code;

/**
 * Folds the task counters' deltas into their totals every second (one hub at a time: the fold
 * takes an advisory lock and the others skip), so readers sum a few rows however many tasks
 * there are; hourly, drops per-minute finish counts past the statistics' longest period.
 */
@Injectable()
export class TaskCountsFolder implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('TaskCounts');
  private folds = 0;
  private readonly periodic = new Periodic('task count fold', this.logger, () => this.fold());

  constructor(private readonly counts: TaskCountsRepository) {}

  onApplicationBootstrap(): void {
    this.periodic.start(FOLD_INTERVAL_MS);
  }

  async fold(): Promise<number> {
    try {
      const folded = await this.counts.fold();
      if (this.folds++ % TRIM_EVERY_FOLDS === 0) await this.counts.dropFinishedBefore(FINISHED_MINUTES_DAYS);
      return folded;
    } catch (e) {
      // A truncate of tasks (an operator, a test) empties the counter tables under a fold: the
      // fold that lost is simply the next second's.
      if (!LOST_TO_A_LOCK.has(sqlState(e) ?? '')) throw e;
      this.logger.debug(`fold gave way to a concurrent truncate (${sqlState(e)})`);
      return 0;
    }
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
