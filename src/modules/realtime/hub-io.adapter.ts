import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import type { Server, ServerOptions } from 'socket.io';
import { createRedisClient } from '../../common/redis.js';
import type { SocketIoGuard } from '../edge/socket-io-guard.js';

/** Socket.IO ping-pong (how the hub learns that a device is gone, not from heartbeat events), message size and CORS. */
export interface IoServerOptions {
  pingInterval: number;
  pingTimeout: number;
  /** Largest inbound message (SOCKET_IO_MAX_MESSAGE_BYTES): a larger one closes that connection. */
  maxHttpBufferSize: number;
  /** The HTTP app's CORS policy (CORS_ORIGIN, CORS_CREDENTIALS, …): gateways do not set their own. */
  cors: NonNullable<ServerOptions['cors']>;
}

/**
 * Socket.IO with the Redis adapter when REDIS_URL is set: a room emit on one hub process
 * reaches sockets held by another. Without Redis it is the plain in-process adapter. Every
 * gateway's server gets the hub's ping intervals, message size limit and CORS policy, and the
 * edge's guard (SocketIoGuard: connections per address, each connection's outbound queue).
 */
export class HubIoAdapter extends IoAdapter {
  private readonly log = new Logger('HubIoAdapter');
  private clients: Redis[] = [];
  private adapter?: ReturnType<typeof createAdapter>;

  constructor(
    app: INestApplicationContext,
    private readonly redisUrl: string | undefined,
    private readonly serverOptions: IoServerOptions,
    private readonly guard?: SocketIoGuard,
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
    const server = super.createIOServer(port, {
      ...options,
      ...this.serverOptions,
      allowRequest: originCheck(this.serverOptions.cors),
    } as ServerOptions) as Server;
    if (this.adapter) server.adapter(this.adapter);
    this.guard?.attach(server);
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

  /**
   * Off: Nest would add a once('disconnect') with two closures to every socket (~300 bytes per
   * device at W4) to feed a gateway's `handleDisconnect`. The gateways do not implement it; the
   * device gateway listens for `disconnect` itself with one listener all its sockets share.
   */
  bindClientDisconnect(): void {}

  async close(server: Server): Promise<void> {
    await super.close(server);
    await Promise.all(this.clients.map((c) => c.quit().catch(() => c.disconnect())));
    this.clients = [];
  }
}

/**
 * With a list of origins, a handshake from a browser page of another origin is refused (403).
 * CORS headers alone do not stop it: browsers do not apply CORS to the WebSocket transport.
 * Clients outside a browser send no Origin and are not affected; `*` allows every origin.
 */
function originCheck(cors: IoServerOptions['cors']): ServerOptions['allowRequest'] {
  const allowed = typeof cors === 'object' && Array.isArray(cors.origin) ? (cors.origin as unknown[]) : undefined;
  if (!allowed) return undefined;
  return (req, callback) => {
    const origin = req.headers.origin;
    callback(null, origin === undefined || allowed.includes(origin));
  };
}
