import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AppConfig } from '../../config/app-config.js';
import { apexRoute } from './apex-paths.js';
import { closeError, refuseUpgrade } from './socket-error.js';
import { LogChannelServer } from './log-channel.server.js';
import { NodeChannelServer } from './node-channel.server.js';
import { WsStreamServer } from './ws-stream.server.js';

/** Engine.IO's default path: its own listener on the same server takes these upgrades. */
const SOCKET_IO_PATH = '/socket.io/';

/**
 * Every raw WebSocket upgrade of the HTTP server goes to the one endpoint its path names:
 * `/ws` (Codex stream or agent proxy), the Apex node channel, the Apex log channel. An
 * upgrade nobody serves is answered 404 at once instead of left hanging until the client
 * gives up.
 */
@Injectable()
export class UpgradeRouter implements OnApplicationBootstrap {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: AppConfig,
    private readonly stream: WsStreamServer,
    private readonly nodeChannel: NodeChannelServer,
    private readonly logChannel: LogChannelServer,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.route(req, socket, head));
  }

  private async route(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub');
    if (url.pathname.startsWith(SOCKET_IO_PATH)) return;
    try {
      if (url.pathname === '/ws' && this.config.WS_ENABLED) return await this.stream.accept(req, socket, head, url);
      const apex = apexRoute(url.pathname);
      if (apex?.channel === 'node') return await this.nodeChannel.accept(req, socket, head, apex);
      if (apex?.channel === 'log') return await this.logChannel.accept(req, socket, head, apex, url);
      refuseUpgrade(socket, 404, closeError('NOT_FOUND', 'No WebSocket endpoint at this path', 'connect'));
    } catch {
      // e.g. the database is down while checking the key: refuse, the client retries.
      refuseUpgrade(socket, 503, closeError('SERVICE_UNAVAILABLE', 'Try again shortly', 'connect'));
    }
  }
}
