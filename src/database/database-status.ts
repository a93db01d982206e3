import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode } from '../common/errors.js';

/** Node socket errors and SQLSTATEs that mean "the server is unreachable", not "the query is wrong". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now; class 08 is "connection exception".
const SERVER_GOING_AWAY = new Set(['57P01', '57P02', '57P03']);
const MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection error/i,
  /not queryable/i,
  /the database system is (starting up|shutting down)/i,
];

/** Is this error PostgreSQL being unreachable (restart, network cut) rather than a bad statement? */
export function isDatabaseUnavailable(e: unknown): boolean {
  for (
    let err = e as { code?: unknown; message?: unknown; driverError?: unknown } | undefined, depth = 0;
    err && depth < 3;
    depth++
  ) {
    const code = typeof err.code === 'string' ? err.code : '';
    if (NETWORK_CODES.has(code) || SERVER_GOING_AWAY.has(code) || code.startsWith('08')) return true;
    if (typeof err.message === 'string' && MESSAGES.some((m) => m.test(err!.message as string))) return true;
    err = err.driverError as typeof err;
  }
  return false;
}

const PROBE_MS = 250;

/**
 * One voice for database outages: the first failure logs one warning and starts a probe
 * (`SELECT 1` every 250 ms); the probe's first success logs one line and wakes everything
 * waiting. `retry` runs a report (progress, result, complete…) again once the database is
 * back, for up to REPORT_RETRY_MS, so nothing a device or worker sent is dropped on the floor.
 */
export class DatabaseStatus {
  private readonly logger = new Logger('Database');
  private down?: { since: number; waiters: Set<() => void> };
  private probe?: NodeJS.Timeout;
  private stopped = false;
  private readonly upListeners: (() => void)[] = [];
  private dataSource?: DataSource;

  constructor(private readonly retryMs: number) {}

  /** What /health shows about the server: its version, and whether it is the hub's embedded one. */
  server: { version?: string; embedded: boolean } = { embedded: false };

  attach(dataSource: DataSource): void {
    this.dataSource = dataSource;
  }

  describe(server: { version: string; embedded: boolean }): void {
    this.server = server;
  }

  get isUp(): boolean {
    return !this.down;
  }

  /** Called when the database is reachable again after an outage. */
  onUp(listener: () => void): void {
    this.upListeners.push(listener);
  }

  /** Records a failure; true when it is an outage (the caller may wait and retry). */
  failed(e: unknown): boolean {
    if (!isDatabaseUnavailable(e)) return false;
    if (!this.down && !this.stopped) {
      this.down = { since: Date.now(), waiters: new Set() };
      this.logger.warn(`database unreachable (${(e as Error).message}); reports are held and retried`);
      this.schedule();
    }
    return true;
  }

  private schedule(): void {
    this.probe = setTimeout(() => void this.check(), PROBE_MS);
    this.probe.unref();
  }

  private async check(): Promise<void> {
    if (!this.down || this.stopped) return;
    try {
      await this.dataSource?.query('SELECT 1');
    } catch {
      return this.schedule();
    }
    const { since, waiters } = this.down;
    this.down = undefined;
    this.logger.log(`database is back after ${((Date.now() - since) / 1000).toFixed(1)} s`);
    waiters.forEach((w) => w());
    this.upListeners.forEach((l) => l());
  }

  /** Resolves when the database is back, or after `ms`. */
  private waitUp(ms: number): Promise<void> {
    const down = this.down;
    if (!down) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        down.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      down.waiters.add(done);
    });
  }

  /**
   * Runs `work`; while it fails because the database is unreachable, waits for it to come back
   * and runs it again, for up to REPORT_RETRY_MS. After that (or once the hub is stopping) the
   * caller gets a retryable SERVICE_UNAVAILABLE. Other errors pass through untouched.
   */
  async retry<T>(work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (e) {
        if (!this.failed(e)) throw e;
        const left = deadline - Date.now();
        if (left <= 0 || this.stopped) {
          throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unreachable; send it again later', {
            retryable: true,
          });
        }
        // Woken by the probe's success; the backoff only bounds a missed wake-up.
        await this.waitUp(Math.min(left, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.probe);
    this.down?.waiters.forEach((w) => w());
  }
}
