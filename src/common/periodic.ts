import type { Logger } from '@nestjs/common';
import { isDatabaseUnavailable } from '../database/database-status.js';

/**
 * One timer running `work` every `intervalMs`, never two runs at once (a slow run makes the
 * next tick skip), errors logged. `stop()` clears the timer and waits for a run in progress.
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly name: string,
    private readonly logger: Logger,
    private readonly work: () => Promise<unknown>,
  ) {}

  start(intervalMs: number, runNow = false): void {
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
    if (runNow) void this.tick();
  }

  /** One run now, unless one is in progress. */
  tick(): Promise<void> {
    this.running ??= this.work()
      .then(() => undefined)
      // A database outage is reported once by DatabaseStatus, not by every timer at every tick.
      .catch((e: unknown) => {
        if (isDatabaseUnavailable(e)) this.logger.debug(`${this.name} waits for the database`);
        else this.logger.error({ err: e }, `${this.name} failed`);
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
