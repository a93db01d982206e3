import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { EventBus } from '../../common/events/event-bus.js';
import { ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';

const OPEN_PATHS = new Set(['/healthz', '/health', '/metrics', '/status']);
/** How long clients get to finish their close handshakes before their connections are cut. */
const CLOSE_HANDSHAKE_MS = 500;

/**
 * Graceful stop, for `POST /shutdown` and SIGTERM alike, bounded by SHUTDOWN_TIMEOUT_MS:
 * refuse new work with 503; tell devices and clients (`server_shutdown {reconnect: true}`)
 * and close their connections so they reconnect (to us once we are back, or to another hub);
 * let in-flight requests finish; then hand over to the exit hook the server installed, which
 * closes the app (managed services stopped, buffered writes flushed, database closed) and
 * exits 0. Whatever connection is still open when the app closes is cut, so nothing can
 * hold the close: a client that never answers a close frame does not stall the hub.
 */
@Injectable()
export class ShutdownService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private inFlight = 0;
  private draining = false;
  private idle?: () => void;
  private readonly sockets = new Set<Socket>();
  /** Set by the process entry point; without one (tests) the hub only drains. */
  exitHook?: (reason: string) => void;
  /** Set by the process entry point: called when the bound passed (exit non-zero). */
  forceHook?: () => void;

  constructor(
    private readonly events: EventBus,
    private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** Every TCP connection (HTTP, Socket.IO, raw WebSocket), so the close can cut what is left. */
  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    const sockets = this.sockets;
    // One listener shared by every socket (`this` is the socket): no closure per connection.
    const forget = function (this: Socket): void {
      sockets.delete(this);
    };
    server?.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', forget);
    });
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

  /** Starts draining; resolves once in-flight requests are done (or their share of the bound passed), then exits via the hook. */
  async begin(reason: string, excludeCurrent = false): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.warn(`shutting down: ${reason}`);
    if (this.forceHook) {
      const force = setTimeout(() => {
        this.logger.error(
          `shutdown took longer than SHUTDOWN_TIMEOUT_MS (${this.config.SHUTDOWN_TIMEOUT_MS} ms); exiting`,
        );
        this.forceHook?.();
      }, this.config.SHUTDOWN_TIMEOUT_MS);
      force.unref();
    }
    this.events.publish('hub.shutdown', { reason });
    // In-flight requests get at most a third of the bound; managed services and the database need the rest.
    const drainMs = Math.floor(this.config.SHUTDOWN_TIMEOUT_MS / 3);
    const others = (): number => this.inFlight - (excludeCurrent ? 1 : 0);
    if (others() > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
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

  /** Before the servers close: connections whose peers did not close them in time are cut. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.sockets.size === 0) return;
    if (this.draining) await new Promise((r) => setTimeout(r, CLOSE_HANDSHAKE_MS));
    const left = [...this.sockets];
    if (this.draining && left.length) this.logger.log(`closing ${left.length} connection(s) still open`);
    left.forEach((s) => s.destroy());
  }
}
