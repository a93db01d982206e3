import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { toAppError } from '../../common/exception.filter.js';
import { AppConfig } from '../../config/app-config.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LiveConnections } from '../nodes/live-connections.js';
import { RAW_WS_CONNECTION_PREFIX } from '../nodes/node.types.js';
import { NodesService } from '../nodes/nodes.service.js';
import type { TaskRow } from '../tasks/task.types.js';
import { type ApexRoute, preferredPath } from './apex-paths.js';
import {
  DeviceProtocol,
  type DeviceSession,
  INBOUND_EVENTS,
  type InboundEvent,
  type ProtocolReply,
} from './device-protocol.js';
import type { Frame, NodeChannelFrame, ServerToClientEvents } from '../../contracts/sockets/node-channel.js';
import { assignmentMessage, cancelMessage, revokeMessage } from './device-outbound.js';
import { RedisFanout } from './redis-fanout.js';
import { NodeLlmBridge } from './node-llm-bridge.js';
import { socketPrincipal } from './socket-auth.js';
import { sees } from './tenant-delivery.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { runAsCall, runWithTenantSetting, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { messageCall } from '../../common/request-id.js';
import { MessageOrder, taskIdOf } from './message-order.js';
import { closeError, socketError } from './socket-error.js';
import type { UpgradeDecision } from './raw-channel.js';
import { EdgeMetrics } from '../edge/edge-metrics.js';
import { isOversizeFrame, sendBounded } from '../edge/outbound.js';

interface NodeConnection {
  readonly id: string;
  readonly ws: WebSocket;
  readonly session: DeviceSession;
  /** Frames of one connection in arrival order (results of different tasks beside each other). */
  readonly order: MessageOrder<void>;
  /** Answered the last ping (transport liveness). */
  alive: boolean;
  /** Aborted when the connection closes (stops its LLM calls). */
  readonly gone: AbortController;
  /** Inbound frames so far: the n of each frame's id `<connection id>:<n>`. */
  seq: number;
}

/** What one hub asks another to do with a connection it holds (with REDIS_URL). */
type FanoutMessage =
  | { kind: 'send'; nodeId: string; frame: NodeChannelFrame; tenant?: string }
  | { kind: 'close'; nodeId?: string; connectionId?: string; code: number; frame: NodeChannelFrame };

const FANOUT_CHANNEL = 'taskhub:node-channel';
/** Assignment frame ids carry the task and attempt, so an ack can be applied on any hub. */
const ASSIGN_ID = /^assign:([0-9a-f-]{36}):(\d+)$/;
const assignId = (task: TaskRow): string => `assign:${task.id}:${task.attempt}`;
/** Frames at most this much over NODE_CHANNEL_MAX_FRAME_BYTES are answered; larger ones close the connection (1009). */
const HARD_LIMIT_FACTOR = 4;
const CLOSE_REPLACED = 4001;
const CLOSE_REMOVED = 4002;

/**
 * The raw WebSocket node channel of seed 001 (`/abp-distributed-server/VCP_Key=<key>` and
 * its aliases): JSON text frames carrying the device-channel vocabulary, handled by the same
 * DeviceProtocol as the Socket.IO gateway (validation, acks, fencing, redelivery). Transport
 * only: authentication at the upgrade, ping-pong liveness, delivery, replacement and close.
 */
@Injectable()
export class NodeChannelServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NodeChannel');
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, NodeConnection>();
  private readonly byNode = new Map<string, NodeConnection>();
  private readonly fanout = new RedisFanout<FanoutMessage>(FANOUT_CHANNEL, (m) => this.onFanout(m));
  private unsubscribe: (() => void)[] = [];
  private pinger?: NodeJS.Timeout;

  constructor(
    private readonly protocol: DeviceProtocol,
    private readonly keys: ApiKeysService,
    private readonly nodes: NodesService,
    private readonly events: EventBus,
    private readonly config: AppConfig,
    private readonly live: LiveConnections,
    private readonly metrics: MetricsService,
    private readonly llm: NodeLlmBridge,
    private readonly tenants: TenantsService,
    private readonly edge: EdgeMetrics,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.NODE_CHANNEL_MAX_FRAME_BYTES * HARD_LIMIT_FACTOR,
    });
  }

  get size(): number {
    return this.connections.size;
  }

  async onApplicationBootstrap(): Promise<void> {
    const onAssign = ({ task, vocabulary }: { task: TaskRow; vocabulary: 'device' | 'node' }): void => {
      const nodeId = task.node_id as string;
      // Most assignments are for Socket.IO devices: build nothing unless the node is here, or
      // may be on another hub's node channel (only Apex nodes; a seed 004 device would cost a publish).
      if (!this.byNode.has(nodeId) && !(vocabulary === 'node' && this.fanout.enabled)) return;
      this.sendToNode(nodeId, assignmentFrame(task, vocabulary), true, task.tenant_id);
    };
    this.unsubscribe = [
      this.events.on('task.assigned', onAssign),
      this.events.on('task.redelivered', onAssign),
      this.events.on('task.cancelled', ({ task, nodeId }) => {
        if (nodeId) this.sendToNode(nodeId, frame('cancel_task', cancelMessage(task)), true, task.tenant_id);
      }),
      this.events.on('task.revoked', ({ taskId, attempt, nodeId, reason }) =>
        this.sendToNode(nodeId, frame('cancel_task', revokeMessage({ task_id: taskId, attempt }, reason))),
      ),
      this.events.on('node.replaced', ({ nodeId, connectionId }) => {
        if (!connectionId.startsWith(RAW_WS_CONNECTION_PREFIX)) return;
        const message = `Node ${nodeId} registered again from another connection`;
        this.close(
          { connectionId },
          CLOSE_REPLACED,
          frame('error', closeError('REPLACED', message, 'node_register', { reason: 'REPLACED' })),
        );
      }),
      this.events.on('node.disconnect', ({ nodeId, reason }) =>
        this.close({ nodeId }, CLOSE_REMOVED, frame('error', closeError('DISCONNECTED', reason, 'disconnect'))),
      ),
      this.events.on('hub.shutdown', ({ reason }) => this.closeForShutdown(reason)),
    ];
    this.metrics.registerClientCounter('node_channel', () => this.connections.size);
    this.pinger = setInterval(() => this.ping(), this.config.SOCKET_PING_INTERVAL_MS);
    this.pinger.unref();
    await this.fanout.start(this.config.REDIS_URL);
  }

  /** The upgrade of an Apex node path: the key in the path must be a worker's or an admin's. */
  async authorize(req: IncomingMessage, route: ApexRoute): Promise<UpgradeDecision> {
    const { principal, tenant, error } = await socketPrincipal(
      { auth: route.key ? { token: route.key } : undefined, headers: req.headers, query: {} },
      this.keys,
      this.config,
      ['worker'],
      this.tenants,
    );
    if (error) return { error };
    return {
      channel: 'node',
      keyId: principal.keyId,
      open: (r, socket, head) =>
        this.wss.handleUpgrade(r, socket, head, (ws) => this.open(ws, route, principal.keyId, tenant)),
    };
  }

  private open(ws: WebSocket, route: ApexRoute, keyId: string | null, tenant: string): void {
    const id = `${RAW_WS_CONNECTION_PREFIX}${randomUUID()}`;
    const conn: NodeConnection = {
      id,
      ws,
      session: { connectionId: id, keyId, tenant },
      order: new MessageOrder(Promise.resolve()),
      alive: true,
      gone: new AbortController(),
      seq: 0,
    };
    this.connections.set(conn.id, conn);
    this.live.opened(conn.id);
    ws.on('pong', () => (conn.alive = true));
    // Each frame is handled in its own call store (its id on every log line it causes).
    ws.on('message', (raw, isBinary) =>
      runAsCall(messageCall(`${conn.id}:${++conn.seq}`), this.onFrame, conn, raw, isBinary),
    );
    ws.on('close', () => this.closed(conn));
    ws.on('error', (e) => {
      if (isOversizeFrame(e)) this.edge.drop('node', 'frame_too_large');
      this.logger.debug({ err: e, connection: conn.id }, 'node channel socket error');
    });
    if (route.deprecated) {
      this.logger.warn(`a node connected through the deprecated path ${route.path}; use ${preferredPath(route)}`);
      this.send(conn, 'warning', {
        code: 'DEPRECATED_PATH',
        message: `${route.path} is deprecated; use ${preferredPath(route)}`,
      });
    }
  }

  private readonly onFrame = (conn: NodeConnection, raw: RawData, isBinary: boolean): void => {
    const bytes = Array.isArray(raw) ? raw.reduce((n, b) => n + b.length, 0) : (raw as Buffer).byteLength;
    if (isBinary)
      return this.refuse(
        conn,
        new AppError(ErrorCode.VALIDATION_ERROR, 'Binary frames are not accepted: send JSON text {type, data, id?}', {
          field: 'frame',
        }),
      );
    if (bytes > this.config.NODE_CHANNEL_MAX_FRAME_BYTES) {
      return this.refuse(
        conn,
        new AppError(
          ErrorCode.PAYLOAD_TOO_LARGE,
          `Frame of ${bytes} bytes is over the limit of ${this.config.NODE_CHANNEL_MAX_FRAME_BYTES}`,
          { field: 'frame' },
        ),
      );
    }
    let frame: unknown;
    try {
      frame = JSON.parse(raw.toString());
    } catch {
      return this.refuse(conn, new AppError(ErrorCode.VALIDATION_ERROR, 'Frame is not valid JSON', { field: 'frame' }));
    }
    const bad = frameError(frame);
    if (bad) return this.refuse(conn, bad, idOf(frame));
    const f = frame as Frame;
    if ((INBOUND_EVENTS as readonly string[]).includes(f.type)) return this.enqueue(conn, f.type as InboundEvent, f);
    switch (f.type) {
      case 'ack':
        return this.onAck(conn, f);
      case 'ping':
        return this.send(conn, 'pong', { server_time: new Date().toISOString() }, f.id);
      case 'llm_request':
        return this.llmRequest(conn, f);
      default:
        return this.refuse(
          conn,
          new AppError(ErrorCode.VALIDATION_ERROR, `Unknown frame type: ${f.type}`, { field: 'type' }),
          f.id,
          f.type,
        );
    }
  };

  /** Seed 001 `llm_request {id, model, messages, …}` (the id may also be the frame's), beside the queue. */
  private llmRequest(conn: NodeConnection, f: Frame): void {
    const data =
      typeof f.data === 'object' && f.data !== null && !Array.isArray(f.data)
        ? (f.data as Record<string, unknown>)
        : undefined;
    const payload = data && data.id === undefined && f.id !== undefined ? { ...data, id: f.id } : (data ?? f.data);
    void runWithTenantSetting(conn.session.tenant ?? SYSTEM_TENANT, () =>
      this.llm.handle(
        conn.session,
        payload,
        {
          chunk: (d) => this.send(conn, 'llm_response_chunk', d, f.id),
          response: (d) => this.send(conn, 'llm_response', d, f.id),
        },
        conn.gone.signal,
      ),
    );
  }

  private enqueue(conn: NodeConnection, event: InboundEvent, f: Frame): void {
    const handle = async (): Promise<void> => {
      if (conn.ws.readyState !== conn.ws.OPEN) return;
      const registering = event === 'node_register' || event === 'device_register';
      // Deliveries for this node may follow its commit at once: route them here before it lands.
      const claimed = registering ? registeringId(f.data) : undefined;
      const previous = claimed !== undefined ? this.byNode.get(claimed) : undefined;
      if (claimed !== undefined && !conn.session.nodeId) this.byNode.set(claimed, conn);
      let reply: ProtocolReply;
      try {
        reply = await this.protocol.handle(conn.session, event, f.data);
      } catch (e) {
        if (claimed !== undefined && this.byNode.get(claimed) === conn && conn.session.nodeId !== claimed) {
          if (previous) this.byNode.set(claimed, previous);
          else this.byNode.delete(claimed);
        }
        const error = toAppError(e);
        if (error.code === ErrorCode.INTERNAL_ERROR) this.logger.error({ err: e, event }, 'node frame failed');
        return this.send(conn, 'error', socketError(error, event), f.id);
      }
      if (registering) this.afterRegister(conn, reply);
      if (reply.emit?.event === 'register_success') this.send(conn, 'register_success', reply.emit.data, f.id);
      else if (reply.emit?.event === 'heartbeat_ack') this.send(conn, 'heartbeat_ack', reply.emit.data, f.id);
      else if (f.id !== undefined) this.send(conn, 'ack', reply.ack as ServerToClientEvents['ack'], f.id);
      if (registering) this.resend(conn, reply);
    };
    if (event === 'task_result') conn.order.result(taskIdOf(f.data), handle);
    else conn.order.ordered(handle);
  }

  private afterRegister(conn: NodeConnection, reply: ProtocolReply): void {
    const nodeId = conn.session.nodeId as string;
    this.byNode.set(nodeId, conn);
    if (reply.replacedConnectionId)
      this.events.publish('node.replaced', { nodeId, connectionId: reply.replacedConnectionId });
  }

  /** After `register_success`: the held tasks it must run again, and stops for those it no longer holds. */
  private resend(conn: NodeConnection, reply: ProtocolReply): void {
    for (const task of reply.deliver ?? []) this.write(conn, assignmentFrame(task, conn.session.vocabulary ?? 'node'));
    for (const r of reply.revoke ?? []) this.send(conn, 'cancel_task', revokeMessage(r, 'not held by this node'));
  }

  /** `{type: "ack", id: "assign:<task>:<attempt>"}` (or `data: {task_id, attempt}`): the assignment is running. */
  private onAck(conn: NodeConnection, f: Frame): void {
    const nodeId = conn.session.nodeId;
    if (!nodeId)
      return this.refuse(conn, new AppError(ErrorCode.NOT_REGISTERED, 'Register first (node_register)'), f.id, 'ack');
    const m = typeof f.id === 'string' ? ASSIGN_ID.exec(f.id) : null;
    const d = (f.data ?? {}) as { task_id?: unknown; attempt?: unknown };
    const taskId = m ? m[1] : typeof d.task_id === 'string' ? d.task_id : undefined;
    const attempt = m ? Number(m[2]) : typeof d.attempt === 'number' ? d.attempt : undefined;
    if (!taskId || attempt === undefined || !Number.isInteger(attempt)) {
      return this.refuse(
        conn,
        new AppError(
          ErrorCode.VALIDATION_ERROR,
          'An ack names an assignment: id "assign:<task_id>:<attempt>" or data {task_id, attempt}',
          { field: 'id' },
        ),
        f.id,
        'ack',
      );
    }
    this.protocol
      .acknowledge(nodeId, taskId, attempt)
      .catch((e: unknown) => this.logger.warn({ err: e, task_id: taskId }, 'could not record an ack'));
  }

  /**
   * To the node's connection here, or (with Redis, when asked) to the hub that holds it. A frame
   * about a task (`tenant`) never goes to a connection of another tenant: one still registering
   * an id (routed here before its registration lands) may be refused as another tenant's id.
   */
  private sendToNode(nodeId: string, frame: NodeChannelFrame, viaFanout = true, tenant?: string): void {
    const found = this.byNode.get(nodeId);
    const conn =
      found && (tenant === undefined || sees(found.session.tenant ?? SYSTEM_TENANT, tenant)) ? found : undefined;
    if (conn) this.write(conn, frame);
    else if (viaFanout && this.fanout.enabled) this.fanout.publish({ kind: 'send', nodeId, frame, tenant });
  }

  private close(
    target: { nodeId?: string; connectionId?: string },
    code: number,
    frame: NodeChannelFrame,
    viaFanout = true,
  ): void {
    const conn = target.connectionId
      ? this.connections.get(target.connectionId)
      : target.nodeId
        ? this.byNode.get(target.nodeId)
        : undefined;
    if (conn) {
      this.write(conn, frame);
      conn.ws.close(code, frame.type === 'error' ? frame.data?.code : frame.type);
    } else if (viaFanout && this.fanout.enabled) {
      this.fanout.publish({ kind: 'close', ...target, code, frame });
    }
  }

  private onFanout(m: FanoutMessage): void {
    if (m.kind === 'send') this.sendToNode(m.nodeId, m.frame, false, m.tenant);
    else this.close({ nodeId: m.nodeId, connectionId: m.connectionId }, m.code, m.frame, false);
  }

  private closed(conn: NodeConnection): void {
    conn.gone.abort('client_closed');
    this.connections.delete(conn.id);
    this.live.closed(conn.id);
    // After queued frames: a registration in flight must land before the node is marked gone.
    void conn.order.drained().then(async () => {
      const nodeId = conn.session.nodeId;
      for (const [id, c] of this.byNode) if (c === conn) this.byNode.delete(id);
      // Missed (database down, hub stopping)? HubInstances reconciles: this connection is no longer live here.
      if (nodeId)
        await runWithTenantSetting(conn.session.tenant ?? SYSTEM_TENANT, () =>
          this.nodes.disconnected(nodeId, conn.id),
        ).catch((e: unknown) => this.logger.debug({ err: e }, 'disconnect bookkeeping deferred'));
    });
  }

  /** Transport liveness: a connection that did not answer the last ping is gone. */
  private ping(): void {
    for (const conn of this.connections.values()) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  private refuse(conn: NodeConnection, error: AppError, id?: string | number, event = 'frame'): void {
    this.send(conn, 'error', socketError(error, event), id);
  }

  /** One frame of the contract: `{type, id?, data}` with the data that type carries. */
  private send<K extends keyof ServerToClientEvents>(
    conn: NodeConnection,
    type: K,
    data: ServerToClientEvents[K],
    id?: string | number,
  ): void {
    this.write(conn, frame(type, data, id));
  }

  private write(conn: NodeConnection, frame: NodeChannelFrame): void {
    // A node that stops reading is dropped past OUTBOUND_LIMIT_BYTES (its tasks are redelivered
    // when it is back, or released after the reconnect grace), not buffered for.
    sendBounded(conn.ws, JSON.stringify(frame), this.config.OUTBOUND_LIMIT_BYTES, () =>
      this.edge.drop('node', 'slow_consumer'),
    );
  }

  /** Every node hears `server_shutdown {reconnect: true}`; 1012 (service restart) tells clients to come back. */
  private closeForShutdown(reason: string): void {
    for (const conn of this.connections.values()) {
      this.send(conn, 'server_shutdown', { reason, reconnect: true, timestamp: new Date().toISOString() });
      conn.ws.close(1012, 'server restarting');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.pinger);
    this.unsubscribe.forEach((u) => u());
    for (const conn of this.connections.values()) conn.ws.terminate();
    this.wss.close();
    await this.fanout.stop();
  }
}

/** Why a parsed frame is not `{type, data?, id?}`, or undefined when it is. */
function frameError(frame: unknown): AppError | undefined {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return new AppError(ErrorCode.VALIDATION_ERROR, 'A frame is a JSON object {type, data, id?}', { field: 'frame' });
  }
  const f = frame as Record<string, unknown>;
  if (typeof f.type !== 'string' || f.type.length === 0 || f.type.length > 64) {
    return new AppError(ErrorCode.VALIDATION_ERROR, 'type must be a non-empty string', { field: 'type' });
  }
  if (
    f.id !== undefined &&
    !((typeof f.id === 'string' && f.id.length <= 128) || (typeof f.id === 'number' && Number.isFinite(f.id)))
  ) {
    return new AppError(ErrorCode.VALIDATION_ERROR, 'id must be a string (at most 128 characters) or a number', {
      field: 'id',
    });
  }
  return undefined;
}

function idOf(frame: unknown): string | number | undefined {
  const id = (frame as { id?: unknown } | null)?.id;
  return (typeof id === 'string' && id.length <= 128) || typeof id === 'number' ? id : undefined;
}

function registeringId(data: unknown): string | undefined {
  const d = data as { node_id?: unknown; nodeId?: unknown; device_id?: unknown } | null;
  const id = d?.node_id ?? d?.nodeId ?? d?.device_id;
  return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
}

function frame<K extends keyof ServerToClientEvents>(
  type: K,
  data: ServerToClientEvents[K],
  id?: string | number,
): NodeChannelFrame {
  return { type, ...(id !== undefined ? { id } : {}), data } as NodeChannelFrame;
}

/** `task_assign` (or `new_task`) with the id an ack names: `assign:<task_id>:<attempt>`. */
function assignmentFrame(task: TaskRow, vocabulary: 'device' | 'node'): NodeChannelFrame {
  const m = assignmentMessage(task, vocabulary);
  return m.event === 'new_task'
    ? frame('new_task', m.data, assignId(task))
    : frame('task_assign', m.data, assignId(task));
}
