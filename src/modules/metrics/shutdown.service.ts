import { Injectable, Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { EventBus } from '../../common/events/event-bus.js';
import { ErrorCode } from '../../common/errors.js';

const OPEN_PATHS = new Set(['/healthz', '/health', '/metrics', '/status']);
const DRAIN_LIMIT_MS = 10_000;

/**
 * Graceful stop, for `POST /shutdown` and SIGTERM alike: refuse new work with 503, tell
 * devices and clients, let in-flight requests finish (bounded), then hand over to the exit
 * hook the server installed (which closes the app and exits 0).
 */
@Injectable()
export class ShutdownService {
  private readonly logger = new Logger('Shutdown');
  private inFlight = 0;
  private draining = false;
  private idle?: () => void;
  /** Set by the process entry point; without one (tests) the hub only drains. */
  exitHook?: (reason: string) => void;

  constructor(private readonly events: EventBus) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** Express middleware: counts in-flight requests and refuses new ones while draining. */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (this.draining && !OPEN_PATHS.has(req.path)) {
      res.setHeader('Connection', 'close');
      res.status(503).json({
        success: false,
        data: null,
        error: { code: ErrorCode.SERVICE_UNAVAILABLE, message: 'The hub is shutting down' },
        timestamp: new Date().toISOString(),
        request_id: req.requestId,
      });
      return;
    }
    this.inFlight++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    };
    res.on('finish', finish);
    res.on('close', finish);
    next();
  };

  /** Starts draining; resolves once in-flight requests are done (or the bound passed), then exits via the hook. */
  async begin(reason: string, excludeCurrent = false): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.warn(`shutting down: ${reason}`);
    this.events.publish('hub.shutdown', { reason });
    const others = (): number => this.inFlight - (excludeCurrent ? 1 : 0);
    if (others() > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, DRAIN_LIMIT_MS);
        this.idle = () => {
          if (others() <= 0) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
    }
    this.exitHook?.(reason);
  }
}
