import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import { clientAddress } from '../edge/client-address.js';
import { ConnectionLedger, type Lease } from '../edge/connection-ledger.js';
import { type EdgeChannel, EdgeMetrics, type EdgeReason } from '../edge/edge-metrics.js';
import { apexRoute } from './apex-paths.js';
import type { UpgradeDecision } from './raw-channel.js';
import { refuseUpgrade, socketError } from './socket-error.js';
import { LogChannelServer } from './log-channel.server.js';
import { NodeChannelServer } from './node-channel.server.js';
import { WsStreamServer } from './ws-stream.server.js';

/** Engine.IO's default path: its own listener on the same server takes these upgrades. */
const SOCKET_IO_PATH = '/socket.io/';

/** Refusal reason (metrics label) of an error code a channel refused with. */
const REASONS: Partial<Record<ErrorCode, EdgeReason>> = {
  [ErrorCode.UNAUTHORIZED]: 'unauthorized',
  [ErrorCode.TENANT_NOT_FOUND]: 'unauthorized',
  [ErrorCode.FORBIDDEN]: 'forbidden',
  [ErrorCode.NOT_FOUND]: 'not_found',
  [ErrorCode.VALIDATION_ERROR]: 'invalid',
  [ErrorCode.SERVICE_UNAVAILABLE]: 'channel_limit',
};

/**
 * The edge of every raw WebSocket upgrade (docs/edge.md): one place that guards, routes,
 * authenticates, limits and times out, then hands a ready socket to its channel — `/ws` (Codex
 * stream or agent proxy), the Apex node channel, the Apex log channel. In order:
 * 1. an `'error'` listener goes on the socket before anything else (Node's HTTP server stops
 *    guarding a socket once it emits `upgrade`; a reset at any byte must end one connection,
 *    never the process);
 * 2. the client address (clientAddress: X-Forwarded-For behind a TRUST_PROXY) is admitted
 *    (MAX_CONNECTIONS_PER_ADDRESS, counted until the socket closes) and the handshake joins those in flight (MAX_PENDING_HANDSHAKES);
 * 3. a WS_HANDSHAKE_TIMEOUT_MS timer answers 503 to a handshake whose key check does not end;
 * 4. the channel checks the key and the request; the key is admitted (MAX_CONNECTIONS_PER_KEY);
 * 5. the channel opens the socket.
 * Every refusal is an HTTP status with the socket error object as its body, and is counted.
 */
@Injectable()
export class UpgradeRouter implements OnApplicationBootstrap {
  private readonly logger = new Logger('Edge');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: AppConfig,
    private readonly ledger: ConnectionLedger,
    private readonly metrics: EdgeMetrics,
    private readonly stream: WsStreamServer,
    private readonly nodeChannel: NodeChannelServer,
    private readonly logChannel: LogChannelServer,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** The guard of Socket.IO's upgrades, one for all (they stay open: no closure per device). */
  private readonly guardIo = (e: Error): void => {
    this.metrics.socketErrors.inc({ stage: 'upgrade' });
    this.logger.debug({ err: e, path: SOCKET_IO_PATH }, 'socket error during a WebSocket upgrade');
  };

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Socket.IO's engine takes its own upgrades (its limits are applied by the Socket.IO guard);
    // it picks them by the raw request target, as here.
    if (req.url?.startsWith(SOCKET_IO_PATH)) {
      socket.on('error', this.guardIo);
      return;
    }
    const guard = (e: Error): void => {
      this.metrics.socketErrors.inc({ stage: 'upgrade' });
      this.logger.debug({ err: e, url: req.url }, 'socket error during a WebSocket upgrade');
    };
    socket.on('error', guard);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://hub');
    } catch {
      return this.refuse(socket, 'upgrade', new AppError(ErrorCode.VALIDATION_ERROR, 'Malformed request target'));
    }
    const address = this.ledger.admitAddress(clientAddress(req));
    if (!address.ok) return this.refuse(socket, 'upgrade', address.error, address.reason);
    const leases: Lease[] = [address.lease];
    socket.once('close', () => leases.forEach((l) => l.release()));
    const pending = this.ledger.admitHandshake();
    if (!pending.ok) return this.refuse(socket, 'upgrade', pending.error, pending.reason);
    const timer = setTimeout(() => {
      pending.lease.release();
      this.refuse(
        socket,
        'upgrade',
        new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The handshake took too long; try again shortly'),
        'handshake_timeout',
      );
    }, this.config.WS_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    void this.decide(req, url).then((decision) => {
      clearTimeout(timer);
      pending.lease.release();
      // Reset, or timed out, while the key was checked: nothing to open.
      if (socket.destroyed || !socket.writable) return;
      if (decision.error) return this.refuse(socket, 'upgrade', decision.error);
      const key = this.ledger.admitKey(decision.channel, decision.keyId);
      if (!key.ok) return this.refuse(socket, decision.channel, key.error, key.reason);
      leases.push(key.lease);
      decision.open(req, socket, head);
      // The channel's WebSocket now listens for errors on the socket (ws does before anything else).
      if (socket.listenerCount('error') > 1) socket.off('error', guard);
    });
  }

  /** Which channel takes the upgrade, and its answer (errors of the key check become a 503). */
  private async decide(req: IncomingMessage, url: URL): Promise<UpgradeDecision> {
    try {
      if (url.pathname === '/ws' && this.config.WS_ENABLED) return await this.stream.authorize(req, url);
      const apex = apexRoute(url.pathname);
      if (apex?.channel === 'node') return await this.nodeChannel.authorize(req, apex);
      if (apex?.channel === 'log') return await this.logChannel.authorize(req, apex, url);
      return { error: new AppError(ErrorCode.NOT_FOUND, 'No WebSocket endpoint at this path') };
    } catch (e) {
      // e.g. the database is down while checking the key: refuse, the client retries.
      this.logger.debug({ err: e, url: req.url }, 'WebSocket upgrade failed');
      return { error: new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'Try again shortly') };
    }
  }

  private refuse(socket: Duplex, channel: EdgeChannel, error: AppError, reason?: EdgeReason): void {
    this.metrics.refuse(channel, reason ?? REASONS[error.code] ?? 'unavailable');
    refuseUpgrade(socket, error.status, socketError(error, 'connect'));
  }
}
