import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import type {
  AssignmentAck,
  ClientToServerEvents,
  LlmResponse,
  ServerToClientEvents,
} from '../../contracts/sockets/device.js';
import type { RefusedAck } from '../../contracts/sockets/error.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { toAppError } from '../../common/exception.filter.js';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { LiveConnections } from '../nodes/live-connections.js';
import { RAW_WS_CONNECTION_PREFIX } from '../nodes/node.types.js';
import { NodesService } from '../nodes/nodes.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import {
  type CallStore,
  currentCall,
  runAsCall,
  runWithTenantSetting,
  SYSTEM_TENANT,
} from '../../database/tenant-context.js';
import { messageCall } from '../../common/request-id.js';
import type { TaskRow } from '../tasks/task.types.js';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import {
  DeviceProtocol,
  type DeviceSession,
  INBOUND_EVENTS,
  type InboundEvent,
  type ProtocolReply,
} from './device-protocol.js';
import { assignmentMessage, cancelMessage, revokeMessage } from './device-outbound.js';
import { MessageOrder, taskIdOf } from './message-order.js';
import { NodeLlmBridge } from './node-llm-bridge.js';
import { callerMiddleware, connectedCaller, type HandshakeLike, socketPrincipal } from './socket-auth.js';
import { SocketIoGuard } from '../edge/socket-io-guard.js';
import { closeError, socketError } from './socket-error.js';
import { corked } from './socket-cork.js';

type DeviceServer = Server<ClientToServerEvents, ServerToClientEvents>;
type DeviceSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

export const nodeRoom = (nodeId: string): string => `node:${nodeId}`;

/** How long a report sent before the registration waits for it (see DeviceGateway.park). */
const EARLY_REPORT_WAIT_MS = 2000;
const PARKED_EVENTS: ReadonlySet<InboundEvent> = new Set(['task_progress', 'task_result', 'log']);

interface ParkedMessage {
  event: InboundEvent;
  payload: unknown;
  reply: Ack | undefined;
  /** The message's own call store: replayed under its id, not the registration's. */
  call: Readonly<CallStore> | undefined;
}

interface SocketState {
  session: DeviceSession;
  /** Messages of one socket in arrival order (results of different tasks beside each other); the gate: authenticated. */
  order: MessageOrder<boolean>;
  /** Reports that arrived before the registration, waiting for it (made by the first). */
  early: ParkedMessage[] | undefined;
  earlyTimer?: NodeJS.Timeout;
  /** Inbound messages so far: the n of each message's id `<socket id>:<n>`. */
  seq: number;
}

/** The callback of an inbound message whose sender asked for an ack (the contract says which answer each gets). */
type Ack = (response: ProtocolReply['ack'] | LlmResponse | RefusedAck) => void;

/**
 * The device channel on the default namespace: seed 004 devices and Apex nodes. Transport
 * only: authentication, rooms and delivery; what a message means is DeviceProtocol's.
 */
// destroyUpgrade off: the raw /ws endpoint shares the HTTP server's upgrade requests.
// CORS and the largest message (SOCKET_IO_MAX_MESSAGE_BYTES) are set for every gateway by HubIoAdapter.
@WebSocketGateway({ destroyUpgrade: false })
export class DeviceGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown {
  @WebSocketServer() server: DeviceServer;
  private readonly logger = new Logger('DeviceGateway');
  private readonly unsubscribe: (() => void)[] = [];

  /**
   * The listeners every device socket shares (Socket.IO calls them with the socket as `this`):
   * a connection costs its state, not a closure (and its context) per listener. W4 counts 10k.
   */
  private readonly onMessage: (this: DeviceSocket, event: string, ...args: unknown[]) => void;
  private readonly onDisconnect: (this: DeviceSocket) => void;

  constructor(
    private readonly protocol: DeviceProtocol,
    private readonly keys: ApiKeysService,
    private readonly nodes: NodesService,
    private readonly events: EventBus,
    private readonly config: AppConfig,
    private readonly connections: LiveConnections,
    private readonly llm: NodeLlmBridge,
    private readonly tenants: TenantsService,
    private readonly guard: SocketIoGuard,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const gateway = this;
    // Each message is handled in its own call store (its id on every log line), through the
    // shared `handleMessage`: the store is the only allocation the id costs.
    this.onMessage = function (event, ...args) {
      const state = (this.data as { state?: SocketState }).state;
      if (!state) return;
      runAsCall(messageCall(`${this.id}:${++state.seq}`), gateway.handleMessage, this, state, event, args);
    };
    this.onDisconnect = function () {
      gateway.disconnected(this);
    };
  }

  /** Who a handshake is: a `worker` (or admin) key, and the tenant it acts for. */
  private readonly resolveCaller = (h: HandshakeLike): ReturnType<typeof socketPrincipal> =>
    socketPrincipal(h, this.keys, this.config, ['worker'], this.tenants);

  afterInit(): void {
    // The key is checked (and counted per key) before the socket connects.
    this.server.use(callerMiddleware('socket.io', this.resolveCaller, this.guard));
    this.unsubscribe.push(
      this.events.on('task.assigned', ({ task, vocabulary }) => this.deliverToRoom(task, vocabulary)),
      this.events.on('task.redelivered', ({ task, vocabulary }) => this.deliverToRoom(task, vocabulary)),
      this.events.on('task.cancelled', ({ task, nodeId }) => {
        if (nodeId) this.server.to(nodeRoom(nodeId)).emit('cancel_task', cancelMessage(task));
      }),
      this.events.on('task.revoked', ({ taskId, attempt, nodeId, reason }) => {
        this.server.to(nodeRoom(nodeId)).emit('cancel_task', revokeMessage({ task_id: taskId, attempt }, reason));
      }),
      this.events.on('hub.shutdown', ({ reason }) => this.closeForShutdown(reason)),
      this.events.on('node.replaced', ({ nodeId, connectionId }) => {
        if (!connectionId.startsWith(RAW_WS_CONNECTION_PREFIX)) this.closeReplaced(connectionId, nodeId);
      }),
      this.events.on('node.disconnect', ({ nodeId, reason }) => {
        this.server.to(nodeRoom(nodeId)).emit('error', closeError('DISCONNECTED', reason));
        this.server.in(nodeRoom(nodeId)).disconnectSockets();
      }),
    );
  }

  /**
   * Sends an assignment to the node asking for an ack. Devices that answer it have the task
   * running at once; those that never answer (seed 004's) are not timed out for it: the liveness
   * sweep re-sends, then releases, an unacknowledged assignment (DISPATCH_ACK_TIMEOUT_MS).
   *
   * A node held by this hub gets it on its socket with a plain ack callback: no timer. Otherwise
   * it goes to the node's room through the adapter (whichever hub holds the socket delivers it),
   * where Socket.IO needs a timeout to collect the acks: that timer is only paid across hubs. (A
   * timer per assignment outlived the socket and the hub's close: a closed in-process hub with an
   * unacknowledged assignment kept the process alive for DISPATCH_ACK_TIMEOUT_MS.)
   */
  private deliverToRoom(task: TaskRow, vocabulary: NodeVocabulary): void {
    const nodeId = task.node_id as string;
    const here = this.server.sockets.adapter.rooms.get(nodeRoom(nodeId));
    if (here?.size) {
      for (const socketId of here) {
        const socket = this.server.sockets.sockets.get(socketId);
        if (socket) this.deliverToSocket(socket, task, vocabulary);
      }
      return;
    }
    const room = this.server.to(nodeRoom(nodeId)).timeout(this.config.DISPATCH_ACK_TIMEOUT_MS);
    const acked = (_err: Error | null, responses: AssignmentAck[]): void => {
      if (responses?.length) this.acknowledged(nodeId, task.id, task.attempt);
    };
    const m = assignmentMessage(task, vocabulary);
    if (m.event === 'new_task') room.emit('new_task', m.data, acked);
    else room.emit('task_assign', m.data, acked);
  }

  /** The same, on one socket of this hub (and held tasks sent again right after a registration). */
  private deliverToSocket(socket: DeviceSocket, task: TaskRow, vocabulary: NodeVocabulary): void {
    const nodeId = task.node_id as string;
    const acked = (): void => this.acknowledged(nodeId, task.id, task.attempt);
    const m = assignmentMessage(task, vocabulary);
    if (m.event === 'new_task') socket.emit('new_task', m.data, acked);
    else socket.emit('task_assign', m.data, acked);
  }

  private acknowledged(nodeId: string, taskId: string, attempt: number): void {
    this.protocol
      .acknowledge(nodeId, taskId, attempt)
      .catch((e: unknown) => this.logger.warn({ err: e, task_id: taskId }, 'could not record an ack'));
  }

  /**
   * Shutdown: every device hears `server_shutdown {reconnect: true}`, then its transport is
   * closed (not a Socket.IO disconnect, which would stop socket.io-client from reconnecting).
   * Engine.IO flushes what is queued before it closes.
   */
  private closeForShutdown(reason: string): void {
    this.server.emit('server_shutdown', { reason, reconnect: true, timestamp: new Date().toISOString() });
    for (const socket of this.server.sockets.sockets.values()) socket.conn.close();
  }

  handleConnection(socket: DeviceSocket): void {
    this.connections.opened(socket.id);
    // Every field set here (a later one would move the object's properties out of line).
    const session: DeviceSession = {
      connectionId: socket.id,
      keyId: undefined,
      tenant: undefined,
      nodeId: undefined,
      vocabulary: undefined,
    };
    const state: SocketState = {
      session,
      order: new MessageOrder(this.authenticate(socket, session)),
      early: undefined,
      earlyTimer: undefined,
      seq: 0,
    };
    (socket.data as { state?: SocketState }).state = state;
    // One listener for every event, shared by every socket (fewer closures per connection than one per event).
    socket.onAny(this.onMessage);
    socket.on('disconnect', this.onDisconnect);
  }

  private readonly handleMessage = (socket: DeviceSocket, state: SocketState, event: string, args: unknown[]): void => {
    const ack = args.find((a): a is Ack => typeof a === 'function');
    if ((INBOUND_EVENTS as readonly string[]).includes(event)) {
      this.enqueue(socket, state, event as InboundEvent, args[0] === ack ? undefined : args[0], ack);
    } else if (event === 'llm_request') {
      this.llmRequest(socket, state, args[0] === ack ? undefined : args[0], ack);
    } else {
      this.sendError(
        socket,
        new AppError(ErrorCode.VALIDATION_ERROR, `Unknown event: ${event}`, { field: 'event' }),
        event,
        ack,
      );
    }
  };

  /** Seed 001 `llm_request`, beside the queue (a long call must not hold up the node's reports). */
  private llmRequest(socket: DeviceSocket, state: SocketState, payload: unknown, ack: Ack | undefined): void {
    void state.order.drained().then(async (authenticated) => {
      if (authenticated === false || !socket.connected) return;
      const gone = new AbortController();
      const onGone = (): void => gone.abort('client_closed');
      socket.once('disconnect', onGone);
      await runWithTenantSetting(state.session.tenant ?? SYSTEM_TENANT, () =>
        this.llm.handle(
          state.session,
          payload,
          {
            chunk: (data) => socket.emit('llm_response_chunk', data),
            response: (data: LlmResponse) => {
              socket.emit('llm_response', data);
              ack?.(data);
            },
          },
          gone.signal,
        ),
      );
      socket.off('disconnect', onGone);
    });
  }

  private async authenticate(socket: DeviceSocket, session: DeviceSession): Promise<boolean> {
    const { principal, tenant, error } = await connectedCaller(socket, this.resolveCaller);
    if (principal) {
      session.keyId = principal.keyId;
      session.tenant = tenant;
    }
    if (!error) return true;
    this.sendError(socket, error, 'connect');
    socket.disconnect(); // not (true): the error packet must go out first
    return false;
  }

  private enqueue(
    socket: DeviceSocket,
    state: SocketState,
    event: InboundEvent,
    payload: unknown,
    reply: Ack | undefined,
  ): void {
    const handle = async (authenticated: boolean): Promise<boolean> => {
      if (authenticated === false || !socket.connected) return false;
      if (PARKED_EVENTS.has(event) && !state.session.nodeId) {
        this.park(socket, state, { event, payload, reply, call: currentCall() });
        return true;
      }
      const result = await this.process(socket, state, event, payload, reply);
      if ((event === 'device_register' || event === 'node_register') && result)
        await this.afterRegister(socket, state, result);
      return true;
    };
    if (event === 'task_result') state.order.result(taskIdOf(payload), handle);
    else state.order.ordered(handle);
  }

  /** Handles one message and answers it; the protocol's reply, or undefined when it was refused. */
  private async process(
    socket: DeviceSocket,
    state: SocketState,
    event: InboundEvent,
    payload: unknown,
    reply: Ack | undefined,
  ): Promise<ProtocolReply | undefined> {
    try {
      const result = await this.protocol.handle(state.session, event, payload);
      if (event === 'device_register' || event === 'node_register') {
        await socket.join(nodeRoom(state.session.nodeId as string));
        if (result.replacedConnectionId)
          this.events.publish('node.replaced', {
            nodeId: state.session.nodeId as string,
            connectionId: result.replacedConnectionId,
          });
      }
      // The event and the ack leave in one write (corked).
      corked(socket, () => {
        if (result.emit?.event === 'register_success') socket.emit('register_success', result.emit.data);
        else if (result.emit?.event === 'heartbeat_ack') socket.emit('heartbeat_ack', result.emit.data);
        reply?.(result.ack);
      });
      return result;
    } catch (e) {
      const error = toAppError(e);
      if (error.code === ErrorCode.INTERNAL_ERROR) this.logger.error({ err: e, event }, 'device message failed');
      this.sendError(socket, error, event, reply);
      return undefined;
    }
  }

  /**
   * socket.io-client sends what it buffered while disconnected before its `connect` handler
   * registers again, so a seed device's result from before a hub restart arrives unregistered.
   * It waits here (EARLY_REPORT_WAIT_MS at most) for the registration instead of being refused.
   */
  private park(socket: DeviceSocket, state: SocketState, message: ParkedMessage): void {
    (state.early ??= []).push(message);
    state.earlyTimer ??= setTimeout(() => {
      state.earlyTimer = undefined;
      const waited = state.early ?? [];
      state.early = undefined;
      const error = new AppError(ErrorCode.NOT_REGISTERED, 'Register first (device_register or node_register)');
      for (const m of waited) this.sendError(socket, error, m.event, m.reply);
    }, EARLY_REPORT_WAIT_MS);
  }

  /**
   * After a registration: the reports that came before it, in order; then the held tasks it
   * must run again (but not those a replayed result just finished) and the revocations.
   */
  private async afterRegister(socket: DeviceSocket, state: SocketState, result: ProtocolReply): Promise<void> {
    clearTimeout(state.earlyTimer);
    state.earlyTimer = undefined;
    const finished = new Set<string>();
    const early = state.early ?? [];
    state.early = undefined;
    for (const m of early) {
      const replayed = m.call
        ? await runAsCall(m.call, () => this.process(socket, state, m.event, m.payload, m.reply))
        : await this.process(socket, state, m.event, m.payload, m.reply);
      const taskId = (m.payload as { task_id?: unknown } | undefined)?.task_id;
      if (replayed && m.event === 'task_result' && typeof taskId === 'string') finished.add(taskId);
    }
    for (const task of result.deliver ?? []) {
      if (!finished.has(task.id)) this.deliverToSocket(socket, task, state.session.vocabulary ?? 'device');
    }
    for (const r of result.revoke ?? []) socket.emit('cancel_task', revokeMessage(r, 'not held by this node'));
  }

  /** The old socket of a re-registered node is told and closed, wherever it is connected. */
  private closeReplaced(connectionId: string, nodeId: string): void {
    const message = `Node ${nodeId} registered again from another connection`;
    this.server.to(connectionId).emit('error', closeError('REPLACED', message));
    this.server.in(connectionId).disconnectSockets();
  }

  private sendError(socket: DeviceSocket, error: AppError, event: string, ack?: Ack): void {
    const body = socketError(error, event);
    socket.emit('error', body);
    ack?.({ success: false, error: body });
  }

  /** Nest's disconnect hook is off (HubIoAdapter.bindClientDisconnect): the shared listener calls this. */
  private disconnected(socket: DeviceSocket): void {
    this.connections.closed(socket.id);
    const state = (socket.data as { state?: SocketState }).state;
    if (!state) return;
    clearTimeout(state.earlyTimer);
    // After queued messages: a register in flight must land before we mark the node gone.
    void state.order.drained().then(async () => {
      const nodeId = state.session.nodeId;
      // Missed (database down, hub stopping)? HubInstances reconciles: this connection is no longer live here.
      if (nodeId)
        await runWithTenantSetting(state.session.tenant ?? SYSTEM_TENANT, () =>
          this.nodes.disconnected(nodeId, socket.id),
        ).catch((e: unknown) => this.logger.debug({ err: e }, 'disconnect bookkeeping deferred'));
    });
  }

  onApplicationShutdown(): void {
    this.unsubscribe.forEach((u) => u());
  }
}
