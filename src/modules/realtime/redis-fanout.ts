import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../common/redis.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';

/**
 * One Redis pub/sub channel between hub processes for what the Socket.IO adapter does not
 * carry (raw WebSocket connections). Messages this process published are not handed back.
 * Without REDIS_URL it is inert: one process holds every connection.
 */
export class RedisFanout<M> {
  private readonly logger = new Logger('RedisFanout');
  private pub?: Redis;
  private sub?: Redis;

  constructor(
    private readonly channel: string,
    private readonly onMessage: (message: M) => void,
  ) {}

  get enabled(): boolean {
    return !!this.pub;
  }

  async start(redisUrl: string | undefined): Promise<void> {
    if (!redisUrl) return;
    this.pub = createRedisClient(redisUrl, 'fanout-pub');
    this.sub = createRedisClient(redisUrl, 'fanout-sub');
    this.sub.on('message', (_channel: string, raw: string) => {
      try {
        const m = JSON.parse(raw) as { origin: string; message: M };
        if (m.origin !== INSTANCE_ID) this.onMessage(m.message);
      } catch (e) {
        this.logger.warn({ err: e, channel: this.channel }, 'unreadable fanout message');
      }
    });
    await this.sub.subscribe(this.channel);
  }

  publish(message: M): void {
    this.pub
      ?.publish(this.channel, JSON.stringify({ origin: INSTANCE_ID, message }))
      .catch((e: unknown) => this.logger.warn({ err: e }, 'fanout publish failed'));
  }

  async stop(): Promise<void> {
    const clients = [this.pub, this.sub].filter((c): c is Redis => !!c);
    this.pub = this.sub = undefined;
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
