import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { AppConfig } from '../../config/app-config.js';
import { EventBus } from '../../common/events/event-bus.js';
import { listen, notify } from '../../database/pg-channel.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';
import { Dispatcher } from './dispatcher.service.js';

export const WAKEUP_CHANNEL = 'taskhub_wakeup';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/**
 * LISTEN/NOTIFY between hub processes on a real PostgreSQL: when tasks become ready or a
 * slot frees up here, the other processes' dispatchers are woken too (at most one NOTIFY
 * per tick), so work spreads across hubs without waiting for the safety tick. The embedded
 * database serves one process, which its in-process events already cover.
 *
 * The connection rides out server restarts: when it drops, one warning, then reconnects with
 * backoff (NOTIFYs are skipped meanwhile, the safety tick covers them); one line when it
 * listens again, and a dispatch round for whatever was missed.
 */
@Injectable()
export class WakeupChannel implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WakeupChannel');
  private client?: pg.Client;
  private pending = false;
  private stopped = false;
  private lostAt?: number;
  private retryTimer?: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly dispatcher: Dispatcher,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.DATABASE_URL || !this.config.DISPATCH_NOTIFY) return;
    await this.connect();
    this.unsubscribe.push(
      this.events.on('tasks.ready', () => this.notifySoon()),
      this.events.on('node.capacity', () => this.notifySoon()),
    );
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.config.DATABASE_URL, connectionTimeoutMillis: 5000 });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === WAKEUP_CHANNEL && n.payload !== INSTANCE_ID) this.dispatcher.kick();
    });
    try {
      await client.connect();
      await listen(client, WAKEUP_CHANNEL);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.lostAt !== undefined) {
      this.logger.log(`wake-up channel listening again after ${((Date.now() - this.lostAt) / 1000).toFixed(1)} s`);
      this.lostAt = undefined;
      this.dispatcher.kick(); // notifications sent while we were away are gone
    }
  }

  private lost(client: pg.Client, e?: Error): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.lostAt = Date.now();
    this.logger.warn(
      `wake-up channel lost (${e?.message ?? 'connection ended'}); reconnecting, the safety tick covers meanwhile`,
    );
    this.reconnect(RECONNECT_MIN_MS);
  }

  private reconnect(delay: number): void {
    this.retryTimer = setTimeout(() => {
      this.connect().catch(() => this.reconnect(Math.min(delay * 2, RECONNECT_MAX_MS)));
    }, delay);
    this.retryTimer.unref();
  }

  private notifySoon(): void {
    if (this.pending || !this.client) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      // A failure here is the connection going away: 'error'/'end' report it once.
      if (this.client) notify(this.client, WAKEUP_CHANNEL, INSTANCE_ID).catch(() => undefined);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe.forEach((u) => u());
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
