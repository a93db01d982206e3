import { Injectable, Logger } from '@nestjs/common';
import type { Namespace, Server, Socket } from 'socket.io';
import type { AppError } from '../../common/errors.js';
import { AppConfig } from '../../config/app-config.js';
import type { SocketError } from '../../contracts/sockets/error.js';
import { socketError } from '../realtime/socket-error.js';
import { type Admission, ConnectionLedger, type Lease, NO_LEASE } from './connection-ledger.js';
import { clientAddress } from './client-address.js';
import { type EdgeChannel, EdgeMetrics } from './edge-metrics.js';
import { dropSlowConsumer } from './outbound.js';

/** One Engine.IO connection (it carries the sockets of one client, one per namespace). */
type EngineConn = Socket['conn'];
/** What the guard reads of an Engine.IO packet. */
interface EnginePacket {
  type: string;
  data?: string | Buffer | ArrayBuffer | ArrayBufferView;
}
/** The `ws` socket under the websocket transport (engine.io does not type it). */
interface WsTransport {
  name: string;
  writable: boolean;
  socket?: Parameters<typeof dropSlowConsumer>[0];
}
/** What `ws` says when an inbound message is larger than maxPayload (it then closes 1009). */
const WS_TOO_LARGE = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';

/** A refused connection that never asks for a namespace is closed after this long. */
const REFUSED_CLOSE_MS = 5000;
/** A slow-consumer drop is logged at warn at most this often (the counter has them all). */
const WARN_EVERY_MS = 60_000;

interface ConnState {
  address: string;
  /** Bytes of the packets waiting in engine.io's writeBuffer (since its last flush to the transport). */
  queued: number;
  /** Its place in the per-address count (absent when refused). */
  lease?: Lease;
  /** The per-key places of its namespaces' sockets (auth on), given back when it closes. */
  keys?: Lease[];
  /** The channel of the first namespace it connected to (the label of its drop). */
  channel?: EdgeChannel;
  /** Refused at the address limit: every namespace it asks for answers connect_error. */
  refused?: Extract<Admission, { ok: false }>;
  refusalTimer?: NodeJS.Timeout;
  refusalCounted?: boolean;
  dropped?: boolean;
}

/** The edge channel of a Socket.IO namespace: `/events` is the client events' own, every other the device channel's. */
export const socketIoChannel = (namespace: string): EdgeChannel => (namespace === '/events' ? 'events' : 'socket.io');

/** The middleware error of a refused Socket.IO connection: the client's `connect_error` carries the socket error object. */
export function connectRefusal(error: AppError): Error & { data: SocketError } {
  return Object.assign(new Error(error.message), { data: socketError(error, 'connect') });
}

/**
 * The edge of Socket.IO (docs/edge.md, "Socket.IO and streamed answers"), applied to the one
 * server every gateway shares, so a new namespace has it without asking:
 *
 * - each Engine.IO connection counts against its source address (MAX_CONNECTIONS_PER_ADDRESS,
 *   the same ledger as the raw channels); past it every namespace the client asks for answers
 *   `connect_error {code: RATE_LIMITED, details.field: 'address'}` and the connection closes;
 * - each connection's outbound queue is bounded (OUTBOUND_LIMIT_BYTES): what waits in
 *   engine.io's writeBuffer (packets pile up there while the transport has not finished its
 *   previous write: a websocket peer that stopped reading, a polling client that stopped
 *   polling) plus what the websocket holds unsent; past it the connection is closed (websocket
 *   close 1008 SLOW_CONSUMER, destroyed after a short grace) and counted;
 * - `admitKey` counts a namespace's authenticated sockets per key (MAX_CONNECTIONS_PER_KEY),
 *   called by the gateways' auth middleware once they know the key.
 */
@Injectable()
export class SocketIoGuard {
  private readonly logger = new Logger('SocketIoGuard');
  /** Engine.IO connection (and its websocket) → its state. */
  private readonly conns = new WeakMap<object, ConnState>();
  /** A namespace socket → its per-key place (auth on). */
  private readonly keyLeases = new WeakMap<Socket, Lease>();
  private lastWarnAt = 0;

  // The listeners every connection shares (the emitter is `this`): no closures per connection
  // (W4: a guarded connection cost ~1.2 KB of closures, contexts and once-wrappers; now its state).
  private readonly onPacketCreate: (this: EngineConn, packet: EnginePacket) => void;
  private readonly onFlush: (this: EngineConn) => void;
  private readonly onTransport: (this: EngineConn, transport: unknown) => void;
  private readonly onWsError: (this: object, e: { code?: string }) => void;
  private readonly onClose: (this: EngineConn) => void;
  private readonly onSocketGone: (this: Socket) => void;

  constructor(
    private readonly config: AppConfig,
    private readonly ledger: ConnectionLedger,
    private readonly edge: EdgeMetrics,
  ) {
    const conns = this.conns;
    const keyLeases = this.keyLeases;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const guard = this;
    this.onPacketCreate = function (packet) {
      const state = conns.get(this);
      if (state) guard.queue(this, state, packet);
    };
    // The writeBuffer went to the transport: from now on it is the websocket's bufferedAmount.
    this.onFlush = function () {
      const state = conns.get(this);
      if (state) state.queued = 0;
    };
    this.onTransport = function (transport) {
      const ws = (transport as WsTransport).socket as unknown as NodeJS.EventEmitter | undefined;
      const state = conns.get(this);
      if (!ws || !state) return;
      conns.set(ws, state);
      ws.on('error', guard.onWsError);
    };
    // Engine.IO closes a websocket whose message is over maxHttpBufferSize (SOCKET_IO_MAX_MESSAGE_BYTES); counted here.
    this.onWsError = function (e) {
      if (e.code === WS_TOO_LARGE) guard.edge.drop(conns.get(this)?.channel ?? 'socket.io', 'frame_too_large');
    };
    this.onClose = function () {
      const state = conns.get(this);
      if (!state) return;
      state.lease?.release();
      state.keys?.forEach((l) => l.release());
      clearTimeout(state.refusalTimer);
    };
    this.onSocketGone = function () {
      keyLeases.get(this)?.release();
    };
  }

  /** Guards every connection of `server` and every namespace it has or will have. */
  attach(server: Server): void {
    server.engine.on('connection', (conn: EngineConn) => this.opened(conn));
    this.guardNamespace(server.of('/'));
    server.on('new_namespace', (nsp) => this.guardNamespace(nsp));
  }

  /**
   * Counts an authenticated socket of `keyId` on `channel` until it disconnects (or its
   * connection closes); the refusal to pass to `next` when the key is at its limit.
   */
  admitKey(socket: Socket, channel: EdgeChannel, keyId: string | null | undefined): Error | undefined {
    // Gone while its key was checked: nothing to count (its close would never release it).
    if (socket.conn.readyState !== 'open') return new Error('connection closed');
    const admission = this.ledger.admitKey(channel, keyId);
    if (!admission.ok) {
      this.edge.refuse(channel, admission.reason);
      return connectRefusal(admission.error);
    }
    if (admission.lease === NO_LEASE) return undefined; // no key (auth off): nothing counted
    this.keyLeases.set(socket, admission.lease);
    socket.on('disconnect', this.onSocketGone);
    // A socket whose connection closes before it connects never hears `disconnect`.
    const state = this.conns.get(socket.conn);
    if (state) (state.keys ??= []).push(admission.lease);
    else socket.conn.once('close', () => admission.lease.release());
    return undefined;
  }

  private opened(conn: EngineConn): void {
    // The handshake request's client address (the forwarded one behind a trusted proxy: TRUST_PROXY).
    const state: ConnState = { address: clientAddress(conn.request), queued: 0 };
    this.conns.set(conn, state);
    const admission = this.ledger.admitAddress(state.address);
    if (admission.ok) {
      state.lease = admission.lease;
    } else {
      state.refused = admission;
      state.refusalTimer = setTimeout(() => {
        this.countRefusal(state, 'socket.io');
        conn.close();
      }, REFUSED_CLOSE_MS);
      state.refusalTimer.unref();
    }
    conn.on('close', this.onClose);
    conn.on('packetCreate', this.onPacketCreate);
    conn.on('flush', this.onFlush);
    this.onTransport.call(conn, conn.transport);
    conn.on('upgrade', this.onTransport);
  }

  private guardNamespace(nsp: Namespace): void {
    const channel = socketIoChannel(nsp.name);
    nsp.use((socket, next) => {
      const state = this.conns.get(socket.conn);
      if (state?.refused) {
        this.countRefusal(state, channel);
        // After the CONNECT_ERROR packet (sent on the next tick); close() still flushes it.
        setImmediate(() => socket.conn.close());
        return next(connectRefusal(state.refused.error));
      }
      if (state) state.channel ??= channel;
      next();
    });
  }

  private countRefusal(state: ConnState, channel: EdgeChannel): void {
    if (state.refusalCounted || !state.refused) return;
    state.refusalCounted = true;
    this.edge.refuse(channel, state.refused.reason);
  }

  /**
   * A packet is about to join the writeBuffer. While the transport is writable it leaves at
   * once (flush), so only packets that will wait are counted.
   */
  private queue(conn: EngineConn, state: ConnState, packet: EnginePacket): void {
    const transport = conn.transport as unknown as WsTransport;
    if (transport.writable || state.dropped) return;
    state.queued += sizeOf(packet.data);
    const limit = this.config.OUTBOUND_LIMIT_BYTES;
    const unsent = state.queued + (transport.socket?.bufferedAmount ?? 0);
    if (limit > 0 && unsent > limit) this.drop(conn, state, transport, unsent);
  }

  private drop(conn: EngineConn, state: ConnState, transport: WsTransport, unsent: number): void {
    state.dropped = true;
    const channel = state.channel ?? 'socket.io';
    this.edge.drop(channel, 'slow_consumer');
    const now = Date.now();
    const level = now - this.lastWarnAt >= WARN_EVERY_MS ? 'warn' : 'debug';
    if (level === 'warn') this.lastWarnAt = now;
    this.logger[level](
      { channel, address: state.address, unsent, limit: this.config.OUTBOUND_LIMIT_BYTES },
      'Socket.IO peer is not reading: connection closed (SLOW_CONSUMER; taskhub_edge_dropped_total counts every one)',
    );
    // A peer that reads again gets the close frame (1008 SLOW_CONSUMER); one that never does is destroyed after a grace.
    if (transport.name === 'websocket' && transport.socket) dropSlowConsumer(transport.socket, () => undefined);
    // Outside the emit that brought us here (a broadcast may be walking its room); discard: the queue is not flushed.
    process.nextTick(() => conn.close(true));
  }
}

function sizeOf(data: EnginePacket['data']): number {
  if (data === undefined) return 1;
  if (typeof data === 'string') return Buffer.byteLength(data);
  return data.byteLength;
}
