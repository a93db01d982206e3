import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { BroadcastOperator, Namespace, Socket } from 'socket.io';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { Answer, RefusedAck } from '../../contracts/sockets/error.js';
import type {
  ChatSubscribedAck,
  ClientToServerEvents,
  ServerToClientEvents,
  SubscribedAck,
} from '../../contracts/sockets/events.js';
import type { OpenAiError as OpenAiErrorBody } from '../../contracts/sockets/tasks.js';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { type ClientEvent, relayClientEvents } from './client-events.js';
import { HubStatusService } from '../metrics/hub-status.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { isAdmin, type Principal } from '../auth/api-key.types.js';
import { parseChatSubscription } from './chat-watch.js';
import { callerMiddleware, connectedCaller, type HandshakeLike, socketPrincipal } from './socket-auth.js';
import { SocketIoGuard } from '../edge/socket-io-guard.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { runAsCall, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { messageCall } from '../../common/request-id.js';
import { publishingTenant } from './tenant-delivery.js';
import { socketError } from './socket-error.js';

type EventsNamespace = Namespace<ClientToServerEvents, ServerToClientEvents>;
type EventsSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

const ALL = 'tasks:all';
const METRICS = 'metrics';
const taskRoom = (id: string): string => `task:${id}`;
const MAX_IDS = 1000;
const CHAT_ALL = 'chat:all';
/** A chat's room for the key that made it (`*`: admins watching that one request). */
const chatRoom = (requestId: string, keyId: string | null): string => `chat:${requestId}:${keyId ?? 'anonymous'}`;

/**
 * Every room is scoped by the tenant setting of its sockets (`<room>@<setting>`, see
 * tenant-delivery.ts), so whatever hub a push reaches through the adapter, it meets only the
 * sockets of its tenant and of global admins acting for every tenant (`@*`). Acks name the rooms
 * without the scope. `notices` is every socket's (alerts and notifications).
 */
const scoped = (room: string, setting: string): string => `${room}@${setting}`;
const NOTICES = 'notices';
/** The rooms of a push about `tenant` (null: hub-wide, global admins only). */
const audience = (rooms: string[], tenant: string | null): string[] =>
  rooms.flatMap((r) => (tenant === null ? [scoped(r, SYSTEM_TENANT)] : [scoped(r, tenant), scoped(r, SYSTEM_TENANT)]));
const settingOf = (socket: EventsSocket): string => (socket.data as { tenant?: string }).tenant ?? SYSTEM_TENANT;

/** One push of the contract to a room (or everyone). */
function push(to: BroadcastOperator<ServerToClientEvents, unknown> | EventsNamespace, e: ClientEvent): void {
  // e.type and e.data belong together (ClientEvent is a union by type); TS cannot correlate them in one call.
  (to.emit as (type: ClientEvent['type'], data: ClientEvent['data']) => boolean).call(to, e.type, e.data);
}

/**
 * Socket.IO namespace `/events` for clients: subscribe to tasks (by id, or all) and receive
 * their lifecycle; `subscribe_metrics` for periodic `metrics_update`. Delivery goes through
 * rooms, so with the Redis adapter a client on one hub sees tasks handled on another.
 */
// CORS and the largest message (SOCKET_IO_MAX_MESSAGE_BYTES) are set for every gateway by HubIoAdapter.
@WebSocketGateway({ namespace: '/events', destroyUpgrade: false })
export class EventsGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown {
  @WebSocketServer() nsp: EventsNamespace;
  private readonly logger = new Logger('EventsGateway');
  private unsubscribe: (() => void)[] = [];
  private metricsTimer?: NodeJS.Timeout;

  constructor(
    private readonly events: EventBus,
    private readonly keys: ApiKeysService,
    private readonly config: AppConfig,
    private readonly status: HubStatusService,
    private readonly metrics: MetricsService,
    private readonly tenants: TenantsService,
    private readonly guard: SocketIoGuard,
  ) {}

  /** Who a handshake is: a `client` (or admin) key, and the tenant it acts for. */
  private readonly resolveCaller = (h: HandshakeLike): ReturnType<typeof socketPrincipal> =>
    socketPrincipal(h, this.keys, this.config, ['client'], this.tenants);

  afterInit(): void {
    // The key is checked (and counted per key) before the socket connects.
    this.nsp.use(callerMiddleware('events', this.resolveCaller, this.guard));
    this.unsubscribe = relayClientEvents(
      (event, handler) => this.events.on(event, handler),
      (e) => {
        // Alerts and notifications reach every client, subscribed to tasks or not.
        if (e.type === 'alert' || e.type === 'notification')
          return push(this.nsp.to(audience([NOTICES], e.tenantId)), e);
        push(this.nsp.to(audience(e.taskId ? [ALL, taskRoom(e.taskId)] : [ALL], e.tenantId)), e);
      },
      // With Redis the adapter carries events to other hubs' clients, so emit even with none here.
      () => !!this.config.REDIS_URL || this.nsp.sockets.size > 0,
    );
    const chat = (requestId: string, keyId: string | null): BroadcastOperator<ServerToClientEvents, unknown> | null =>
      !this.config.REDIS_URL && this.nsp.sockets.size === 0
        ? null
        : this.nsp.to([
            ...audience([chatRoom(requestId, keyId)], SYSTEM_TENANT),
            ...audience([chatRoom(requestId, '*'), CHAT_ALL], publishingTenant()),
          ]);
    this.unsubscribe.push(
      this.events.on('llm.chunk', ({ requestId, keyId, chunk }) =>
        chat(requestId, keyId)?.emit('chat.chunk', { request_id: requestId, chunk }),
      ),
      this.events.on('llm.completed', ({ requestId, keyId, completion, error }) =>
        chat(requestId, keyId)?.emit('chat.completed', {
          request_id: requestId,
          completion,
          error: error as OpenAiErrorBody | null,
        }),
      ),
    );
    this.unsubscribe.push(
      // Told, then the transport closes (not a Socket.IO disconnect): socket.io-client reconnects by itself.
      this.events.on('hub.shutdown', ({ reason }) => {
        this.nsp.emit('server_shutdown', { reason, reconnect: true, timestamp: new Date().toISOString() });
        for (const socket of this.nsp.sockets.values()) socket.conn.close();
      }),
    );
    this.metrics.registerClientCounter('events', () => this.nsp.sockets.size);
    this.metricsTimer = setInterval(() => void this.pushMetrics(), this.config.METRICS_UPDATE_INTERVAL_MS);
    this.metricsTimer.unref();
  }

  handleConnection(socket: EventsSocket): void {
    // Listening at once: a client may ask before its key is checked; each message waits for it.
    const ready = this.authenticate(socket);
    // Each message in its own call store, `<socket id>:<n>` (n counting this socket's messages).
    let seq = 0;
    const when =
      <A extends unknown[]>(f: (who: Principal, ...args: A) => unknown) =>
      (...args: A): void =>
        runAsCall(
          messageCall(`${socket.id}:${++seq}`),
          () => void ready.then((who) => (who ? f(who, ...args) : undefined)),
        );
    // Payloads are read as unknown: the contract says what passes the checks below, not what a client may send.
    socket.on(
      'subscribe_tasks',
      when((_who, payload: unknown, ack) => this.subscribe(socket, payload, ack, true)),
    );
    socket.on(
      'unsubscribe_tasks',
      when((_who, payload: unknown, ack) => this.subscribe(socket, payload, ack, false)),
    );
    socket.on(
      'subscribe_metrics',
      when((_who, _p: unknown, ack) => {
        void socket.join(scoped(METRICS, settingOf(socket)));
        if (typeof ack === 'function') ack({ success: true, interval_ms: this.config.METRICS_UPDATE_INTERVAL_MS });
      }),
    );
    socket.on(
      'unsubscribe_metrics',
      when((_who, _p: unknown, ack) => {
        void socket.leave(scoped(METRICS, settingOf(socket)));
        if (typeof ack === 'function') ack({ success: true });
      }),
    );
    socket.on(
      'subscribe_chat',
      when((who, payload: unknown, ack) => this.subscribeChat(socket, who, payload, ack, true)),
    );
    socket.on(
      'unsubscribe_chat',
      when((who, payload: unknown, ack) => this.subscribeChat(socket, who, payload, ack, false)),
    );
    socket.on(
      'get_status',
      when(async (_who, _p: unknown, ack) => {
        const snapshot = await this.status.snapshot();
        socket.emit('status', snapshot);
        if (typeof ack === 'function') ack({ success: true, ...snapshot });
      }),
    );
  }

  /** Checks the key and binds the socket to its tenant; undefined (and the socket closed) when refused. */
  private async authenticate(socket: EventsSocket): Promise<Principal | undefined> {
    const { principal, tenant, error } = await connectedCaller(socket, this.resolveCaller);
    if (error) {
      socket.emit('error', socketError(error, 'connect'));
      socket.disconnect();
      return undefined;
    }
    (socket.data as { tenant?: string }).tenant = tenant;
    await socket.join(scoped(NOTICES, tenant));
    return principal;
  }

  /**
   * Chat streamed to front-ends: `{request_id}` joins that request's room for this key (a
   * non-admin hears only its own key's requests); admins may also watch `{all: true}`.
   */
  private async subscribeChat(
    socket: EventsSocket,
    who: Principal,
    payload: unknown,
    ack: Answer<ChatSubscribedAck> | undefined,
    join: boolean,
  ): Promise<void> {
    const sub = parseChatSubscription(payload, who);
    const event = join ? 'subscribe_chat' : 'unsubscribe_chat';
    if ('error' in sub)
      return this.refuse(socket, new AppError(ErrorCode.VALIDATION_ERROR, sub.error, { field: sub.field }), event, ack);
    const room = sub.all ? CHAT_ALL : chatRoom(sub.requestId, isAdmin(who) ? '*' : who.keyId);
    // A key's own requests are its own whatever the tenant; the admin rooms are per tenant.
    const inRoom = scoped(room, isAdmin(who) ? settingOf(socket) : SYSTEM_TENANT);
    if (join) await socket.join(inRoom);
    else await socket.leave(inRoom);
    if (typeof ack === 'function') ack({ success: true, room });
  }

  /** `{taskIds: [...]}` joins those tasks; no ids (or `all: true`) joins every task. */
  private async subscribe(
    socket: EventsSocket,
    payload: unknown,
    ack: Answer<SubscribedAck> | undefined,
    join: boolean,
  ): Promise<void> {
    const p = (payload ?? {}) as { taskIds?: unknown; all?: unknown };
    const ids = p.taskIds;
    if (
      ids !== undefined &&
      (!Array.isArray(ids) || ids.length > MAX_IDS || !ids.every((x) => typeof x === 'string' && x.length <= 100))
    ) {
      const error = new AppError(ErrorCode.VALIDATION_ERROR, `taskIds must be an array of at most ${MAX_IDS} ids`, {
        field: 'taskIds',
      });
      return this.refuse(socket, error, join ? 'subscribe_tasks' : 'unsubscribe_tasks', ack);
    }
    const setting = settingOf(socket);
    const rooms = (
      ids === undefined || ids.length === 0 || p.all === true ? [ALL] : (ids as string[]).map(taskRoom)
    ).map((r) => scoped(r, setting));
    if (join) await socket.join(rooms);
    else await Promise.all(rooms.map((r) => socket.leave(r)));
    const suffix = scoped('', setting);
    const subscribed = [...socket.rooms]
      .filter((r) => r.endsWith(suffix) && r !== scoped(NOTICES, setting))
      .map((r) => r.slice(0, -suffix.length));
    if (typeof ack === 'function') ack({ success: true, subscribed });
  }

  /** `error` to the socket, and the refused ack when it asked for one. */
  private refuse(
    socket: EventsSocket,
    error: AppError,
    event: string,
    ack: ((a: RefusedAck) => void) | undefined,
  ): void {
    const body = socketError(error, event);
    socket.emit('error', body);
    if (typeof ack === 'function') ack({ success: false, error: body } satisfies RefusedAck);
  }

  /** One snapshot per tenant setting that has listeners here: each hears its own tenant's counts. */
  private async pushMetrics(): Promise<void> {
    const prefix = `${METRICS}@`;
    // Only computed for rooms someone on this hub joined (local rooms: each hub pushes to its own sockets).
    const settings = [...this.nsp.adapter.rooms.entries()]
      .filter(([room, members]) => room.startsWith(prefix) && members.size > 0)
      .map(([room]) => room.slice(prefix.length));
    for (const setting of settings) {
      try {
        this.nsp.local.to(scoped(METRICS, setting)).emit('metrics_update', await this.status.snapshotFor(setting));
      } catch (e) {
        this.logger.warn({ err: e }, 'metrics_update failed');
      }
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.metricsTimer);
    this.unsubscribe.forEach((u) => u());
  }
}
