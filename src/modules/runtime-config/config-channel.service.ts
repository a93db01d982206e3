import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { listen } from '../../database/pg-channel.js';
import { CONFIG_CHANNEL } from './runtime-config.repository.js';
import { RuntimeConfigService } from './runtime-config.service.js';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
/** How the listening connection shows in pg_stat_activity. */
export const CONFIG_LISTENER_APPLICATION = 'taskhub-config-listener';

/**
 * LISTEN taskhub_config on a dedicated connection (the pattern of the dispatcher's
 * WakeupChannel): a NOTIFY from any instance (this one included) reloads every stored setting.
 * Both the embedded server and an external one, since a change must reach every process.
 *
 * A lost connection is one warning, then reconnects with backoff; once it listens again it
 * reloads everything, because a NOTIFY sent meanwhile is gone. The first LISTEN failing does
 * not stop the boot (settings were loaded through the pool already); it keeps retrying.
 */
@Injectable()
export class ConfigChannel implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ConfigChannel');
  private client?: pg.Client;
  private stopped = false;
  private lostAt?: number;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: DataSource,
    private readonly settings: RuntimeConfigService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.connect();
    } catch (e) {
      this.lostAt = Date.now();
      this.logger.warn(
        `config channel: cannot LISTEN (${(e as Error).message}); retrying, changes made elsewhere apply once it listens`,
      );
      this.reconnect(RECONNECT_MIN_MS);
    }
  }

  private async connect(): Promise<void> {
    const url = (this.db.options as { url?: string }).url;
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 5000,
      application_name: CONFIG_LISTENER_APPLICATION,
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === CONFIG_CHANNEL) this.reloadAll('notification');
    });
    try {
      await client.connect();
      await listen(client, CONFIG_CHANNEL);
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
      this.logger.log(`config channel listening again after ${((Date.now() - this.lostAt) / 1000).toFixed(1)} s`);
      this.lostAt = undefined;
    }
    // Anything committed before LISTEN took effect (at boot, or while the connection was down) is read now.
    this.reloadAll('listen');
  }

  private reloadAll(why: string): void {
    this.settings.reload().catch((e: unknown) => this.logger.warn({ err: e }, `reloading settings (${why}) failed`));
  }

  private lost(client: pg.Client, e?: Error): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.lostAt = Date.now();
    this.logger.warn(`config channel lost (${e?.message ?? 'connection ended'}); reconnecting`);
    this.reconnect(RECONNECT_MIN_MS);
  }

  private reconnect(delay: number): void {
    this.retryTimer = setTimeout(() => {
      this.connect().catch(() => this.reconnect(Math.min(delay * 2, RECONNECT_MAX_MS)));
    }, delay);
    this.retryTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
