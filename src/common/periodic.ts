import type { Logger } from '@nestjs/common';

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

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running ??= this.work()
        .then(() => undefined)
        .catch((e: unknown) => this.logger.error({ err: e }, `${this.name} failed`))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
