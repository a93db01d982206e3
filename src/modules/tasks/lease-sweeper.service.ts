import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { AppConfig } from '../../config/app-config.js';
import { TaskRecoveryService } from './task-recovery.service.js';

const BATCH = 500;

/**
 * One timer for the whole hub (not one per task): every SWEEP_INTERVAL_MS it moves
 * tasks whose lease ran out to retry or timed_out, in batches, until none are left.
 * Safe with several hub processes: the repository claims rows with SKIP LOCKED.
 */
@Injectable()
export class LeaseSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('LeaseSweeper');
  private readonly periodic = new Periodic('lease sweep', this.logger, () => this.sweep());

  constructor(
    private readonly recovery: TaskRecoveryService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // At once too: after a crash, leases that ran out while no hub was up are swept now.
    this.periodic.start(this.config.SWEEP_INTERVAL_MS, true);
  }

  /** Sweeps until a batch comes back short; returns how many tasks were moved. */
  async sweep(): Promise<number> {
    let moved = 0;
    for (;;) {
      const rows = await this.recovery.sweepExpiredLeases(BATCH);
      moved += rows.length;
      if (rows.length) this.logger.warn(`${rows.length} lease(s) expired: re-queued or timed out`);
      if (rows.length < BATCH) return moved;
    }
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
