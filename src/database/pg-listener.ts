import type { Logger } from '@nestjs/common';
import pg from 'pg';
import type { DataSource } from 'typeorm';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/**
 * LISTEN on one PostgreSQL channel over a dedicated connection, reconnecting with backoff
 * when it drops; NOTIFY through the pool. `onListening` runs after every (re)LISTEN, for
 * callers that must catch up on what a lost connection missed.
 */
export class PgListener {
  private client?: pg.Client;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: DataSource,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly onMessage: (payload: string) => void,
    private readonly onListening: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (e) {
      this.logger.warn(`cannot LISTEN ${this.channel} (${(e as Error).message}); retrying`);
      this.reconnect(RECONNECT_MIN_MS);
    }
  }

  notify(payload: string): Promise<void> {
    return this.db.query('SELECT pg_notify($1, $2)', [this.channel, payload]).then(() => undefined);
  }

  private async connect(): Promise<void> {
    const url = (this.db.options as { url?: string }).url;
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 5000,
      application_name: `taskhub-${this.channel}`,
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === this.channel) this.onMessage(n.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.stopped) return void (await client.end().catch(() => undefined));
    this.client = client;
    this.onListening();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.logger.warn(`LISTEN ${this.channel} connection lost; reconnecting`);
    this.reconnect(RECONNECT_MIN_MS);
  }

  private reconnect(delay: number): void {
    this.retryTimer = setTimeout(
      () => void this.connect().catch(() => this.reconnect(Math.min(delay * 2, RECONNECT_MAX_MS))),
      delay,
    );
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
