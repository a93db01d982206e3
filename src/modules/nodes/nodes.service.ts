import { randomUUID } from 'node:crypto';
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import type { HeartbeatReport, HeldTask, NodeKind, NodeRegistration, NodeRow, NodeStatus } from './node.types.js';
import { NodesRepository, type ToolOffer } from './nodes.repository.js';
import { runAsSystem } from '../../database/tenant-context.js';

/** This process, as recorded on the nodes whose sockets it holds. */
export const INSTANCE_ID = randomUUID();

const HEARTBEAT_FLUSH_MS = 1000;

@Injectable()
export class NodesService implements OnApplicationShutdown {
  /** Heartbeats since the last flush; a later report of a node wins over an earlier one. */
  private heartbeats = new Map<string, HeartbeatReport | null>();
  private flushTimer?: NodeJS.Timeout;

  constructor(
    private readonly repo: NodesRepository,
    private readonly events: EventBus,
  ) {}

  async register(
    r: Omit<NodeRegistration, 'instanceId'>,
  ): Promise<{ node: NodeRow; replacedSocketId: string | null; held: HeldTask[] }> {
    const registered = await this.repo.register({ ...r, instanceId: INSTANCE_ID });
    // Node ids are hub-wide: one held by another tenant is refused (whose it is is not told).
    if (!registered)
      throw new AppError(ErrorCode.CONFLICT, `Node id ${r.id} is taken: register with another id`, {
        field: r.kind === 'node' ? 'node_id' : 'device_id',
        reason: 'NODE_ID_TAKEN',
      });
    const { node, previousSocketId, held } = registered;
    const replaced = previousSocketId && previousSocketId !== r.socketId ? previousSocketId : null;
    this.events.publish('node.online', { nodeId: node.id, tenantId: node.tenant_id });
    this.events.publish('node.capacity', { nodeId: node.id });
    return { node, replacedSocketId: replaced, held };
  }

  /** What the tenant's connected nodes offer as tools (GET /v1/tools, the chat tool loop). */
  toolOffers(): Promise<ToolOffer[]> {
    return this.repo.toolOffers();
  }

  /** The socket went away. Its tasks stay with it for the reconnect grace (see NodeLiveness). */
  async disconnected(nodeId: string, socketId: string): Promise<void> {
    const gone = await this.repo.markDisconnected(nodeId, socketId);
    if (gone)
      this.events.publish('node.offline', {
        nodeId,
        reason: 'disconnected',
        held: gone.held,
        tenantId: gone.tenant_id,
      });
  }

  /** Heartbeats are buffered and written once a second in one statement. */
  heartbeat(nodeId: string, report: HeartbeatReport | null = null): void {
    const earlier = this.heartbeats.get(nodeId);
    this.heartbeats.set(nodeId, earlier && report ? { ...earlier, ...report } : (report ?? earlier ?? null));
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flushHeartbeats(), HEARTBEAT_FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  async flushHeartbeats(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const beats = [...this.heartbeats].map(([id, report]) => ({ id, report }));
    this.heartbeats = new Map();
    // As the system: the buffer holds every tenant's nodes, and the timer runs in the context of
    // whichever heartbeat armed it (under one tenant's, the others' would silently not apply).
    await runAsSystem(() => this.repo.touchHeartbeats(beats)).catch(() =>
      beats.forEach((b) => this.heartbeats.has(b.id) || this.heartbeats.set(b.id, b.report)),
    );
  }

  async get(id: string): Promise<NodeRow> {
    const node = await this.repo.findById(id);
    if (!node) throw AppError.notFound('Node', id);
    return node;
  }

  list(f: { status?: NodeStatus; tag?: string; kind?: NodeKind; limit: number; offset: number }) {
    return this.repo.list(f);
  }

  countConnected(): Promise<number> {
    return this.repo.countConnected();
  }

  countOnline(): Promise<{ online: number; total: number }> {
    return this.repo.countOnline();
  }

  countOnlineByTenant(): Promise<{ tenant_id: string; online: number; total: number }[]> {
    return this.repo.countOnlineByTenant();
  }

  async setDraining(id: string, draining: boolean): Promise<NodeRow> {
    const node = await this.repo.setDraining(id, draining);
    if (!node) throw AppError.notFound('Node', id);
    if (!draining) this.events.publish('node.capacity', { nodeId: id });
    return node;
  }

  /** Forget the node: close its sockets wherever they are. The caller re-queues its tasks. */
  async remove(id: string): Promise<NodeRow> {
    const node = await this.get(id);
    this.events.publish('node.disconnect', { nodeId: id, reason: 'removed by an administrator' });
    await this.repo.delete(id);
    return node;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flushHeartbeats();
  }
}
