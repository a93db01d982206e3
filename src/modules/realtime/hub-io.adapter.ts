import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import type { Server, ServerOptions } from 'socket.io';
import { createRedisClient } from '../../common/redis.js';

/** Socket.IO ping-pong: how the hub learns that a device is gone (not from heartbeat events). */
export interface PingOptions {
  pingInterval: number;
  pingTimeout: number;
}

/**
 * Socket.IO with the Redis adapter when REDIS_URL is set: a room emit on one hub process
 * reaches sockets held by another. Without Redis it is the plain in-process adapter.
 */
export class HubIoAdapter extends IoAdapter {
  private readonly log = new Logger('HubIoAdapter');
  private clients: Redis[] = [];
  private adapter?: ReturnType<typeof createAdapter>;

  constructor(
    app: INestApplicationContext,
    private readonly redisUrl: string | undefined,
    private readonly ping: PingOptions,
  ) {
    super(app);
  }

  async connect(): Promise<void> {
    if (!this.redisUrl) return;
    const pub = createRedisClient(this.redisUrl, 'io-pub');
    const sub = createRedisClient(this.redisUrl, 'io-sub');
    await Promise.all([pub.connect(), sub.connect()]);
    this.clients = [pub, sub];
    this.adapter = createAdapter(pub, sub);
    this.log.log('Socket.IO rooms shared through Redis');
  }

  createIOServer(port: number, options?: ServerOptions): Server {
    const server = super.createIOServer(port, { ...options, ...this.ping } as ServerOptions) as Server;
    if (this.adapter) server.adapter(this.adapter);
    return server;
  }

  /**
   * The gateways read their events themselves (`socket.onAny` / `socket.on`), so Nest has no
   * message handler to bind; its adapter still builds a disconnect Observable chain for every
   * socket (4 Observables and their closures per device). Skipped when there is nothing to bind.
   */
  bindMessageHandlers(...args: Parameters<IoAdapter['bindMessageHandlers']>): void {
    const [, handlers] = args;
    if (handlers.length === 0) return;
    super.bindMessageHandlers(...args);
  }

  async close(server: Server): Promise<void> {
    await super.close(server);
    await Promise.all(this.clients.map((c) => c.quit().catch(() => c.disconnect())));
    this.clients = [];
  }
}
