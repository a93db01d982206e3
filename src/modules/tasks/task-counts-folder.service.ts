import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { TaskCountsRepository } from './task-counts.repository.js';

/** How often the deltas are folded: what a reader sums beyond the folded rows is about this much work. */
const FOLD_INTERVAL_MS = 1000;
/** Per-minute finish counts are kept as long as the longest statistics period (90 days). */
const FINISHED_MINUTES_DAYS = 90;
const TRIM_EVERY_FOLDS = 3600;

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
    const folded = await this.counts.fold();
    if (this.folds++ % TRIM_EVERY_FOLDS === 0) await this.counts.dropFinishedBefore(FINISHED_MINUTES_DAYS);
    return folded;
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
