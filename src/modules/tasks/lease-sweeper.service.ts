import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { TasksService } from './tasks.service.js';

const BATCH = 500;

/**
 * One timer for the whole hub (not one per task): every SWEEP_INTERVAL_MS it moves
 * tasks whose lease ran out to retry or timed_out, in batches, until none are left.
 * Safe with several hub processes: the repository claims rows with SKIP LOCKED.
 */
@Injectable()
export class LeaseSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('LeaseSweeper');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly tasks: TasksService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .then(() => undefined)
        .catch((e: unknown) => this.logger.error({ err: e }, 'lease sweep failed'))
        .finally(() => (this.running = undefined));
    }, this.config.SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  /** Sweeps until a batch comes back short; returns how many tasks were moved. */
  async sweep(): Promise<number> {
    let moved = 0;
    for (;;) {
      const rows = await this.tasks.sweepExpiredLeases(BATCH);
      moved += rows.length;
      if (rows.length) this.logger.warn(`${rows.length} lease(s) expired: re-queued or timed out`);
      if (rows.length < BATCH) return moved;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
