import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { AppConfig } from '../../config/app-config.js';
import { EventBus } from '../../common/events/event-bus.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';
import { Dispatcher } from './dispatcher.service.js';

export const WAKEUP_CHANNEL = 'taskhub_wakeup';

/**
 * LISTEN/NOTIFY between hub processes on a real PostgreSQL: when tasks become ready or a
 * slot frees up here, the other processes' dispatchers are woken too (at most one NOTIFY
 * per tick), so work spreads across hubs without waiting for the safety tick. The embedded
 * database serves one process, which its in-process events already cover.
 */
@Injectable()
export class WakeupChannel implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WakeupChannel');
  private client?: pg.Client;
  private pending = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly events: EventBus,
    private readonly dispatcher: Dispatcher,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.DATABASE_URL || !this.config.DISPATCH_NOTIFY) return;
    const client = new pg.Client({ connectionString: this.config.DATABASE_URL });
    client.on('error', (e) => this.logger.error({ err: e }, 'wake-up connection failed; relying on the safety tick'));
    client.on('notification', (n) => {
      if (n.channel === WAKEUP_CHANNEL && n.payload !== INSTANCE_ID) this.dispatcher.kick();
    });
    await client.connect();
    await client.query(`LISTEN ${WAKEUP_CHANNEL}`);
    this.client = client;
    this.unsubscribe.push(
      this.events.on('tasks.ready', () => this.notifySoon()),
      this.events.on('node.capacity', () => this.notifySoon()),
    );
  }

  private notifySoon(): void {
    if (this.pending || !this.client) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.client
        ?.query(`SELECT pg_notify($1, $2)`, [WAKEUP_CHANNEL, INSTANCE_ID])
        .catch((e: unknown) => this.logger.warn({ err: e }, 'NOTIFY failed'));
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe.forEach((u) => u());
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
