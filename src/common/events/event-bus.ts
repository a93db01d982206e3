import { EventEmitter } from 'node:events';
import { Injectable, Logger } from '@nestjs/common';
import type { LogLine } from '../../contracts/sockets/log-channel.js';
import type { TaskRow } from '../../modules/tasks/task.types.js';

/** How the hub speaks to a node: seed 004 devices (`new_task`) or Apex nodes (`task_assign`). */
export type NodeVocabulary = 'device' | 'node';

/** Every in-process domain event and its payload. Services publish; the realtime module relays. */
export interface DomainEvents {
  /** Tasks became claimable (submitted, re-queued, retried): wake the dispatcher. */
  'tasks.ready': { count: number; runAt?: Date };
  /** A node has room again (registered, finished a task, undrained). */
  'node.capacity': { nodeId: string };
  'task.assigned': { task: TaskRow; vocabulary: NodeVocabulary };
  /** The same attempt sent again to its node (no ack in time). Not a new hand-out: clients are not told. */
  'task.redelivered': { task: TaskRow; vocabulary: NodeVocabulary };
  /** The node held this attempt but no longer does (released, or reported but not held): send it `cancel_task`. */
  'task.revoked': { taskId: string; attempt: number; nodeId: string; reason: string };
  /** Cancelled; `nodeId` is the node that held it (to be told), if any. */
  'task.cancelled': { task: TaskRow; nodeId: string | null };
  'task.created': { task: TaskRow };
  /** Handed to a pull worker (a node's hand-out is `task.assigned`). */
  'task.started': { task: TaskRow };
  'task.progress': { task: TaskRow };
  'task.completed': { task: TaskRow };
  /** An attempt failed; `retrying` when the retry policy put it back in the queue. */
  'task.failed': { task: TaskRow; retrying: boolean };
  /** `tenantId`: the node's tenant, when the publisher knows it (streams deliver node events by it). */
  'node.online': { nodeId: string; tenantId?: string };
  /** `held`: tasks it still holds (kept for the reconnect grace), when known. */
  'node.offline': { nodeId: string; reason: string; held?: number; tenantId?: string };
  /** The hub is stopping: tell devices and clients (they may reconnect), then close their connections. */
  'hub.shutdown': { reason: string };
  /**
   * A node registered again from another connection: the old one (on any transport, on any
   * hub) is told and closed. Raw WebSocket connection ids start with `ws:`.
   */
  'node.replaced': { nodeId: string; connectionId: string };
  /** Close every socket of this node (deleted, replaced, or silent). */
  'node.disconnect': { nodeId: string; reason: string };
  /** A tenant and every row it owned are gone: drop what is cached about it (its keys). */
  'tenant.deleted': { tenantId: string };
  /** An agent service stopped taking connections (crashed, stopped, deleted, unhealthy). */
  'service.down': {
    serviceId: string;
    reason: 'service_crashed' | 'service_stopped' | 'service_unhealthy' | 'service_removed';
  };
  /** An agent service can take connections again (started, recovered). */
  'service.up': { serviceId: string };
  /**
   * Something a person should hear about now (a task failed for good, a node went offline
   * holding tasks, a plugin callback was refused, a managed service crashed). Relayed as
   * `alert` on /ws and /events, and as a line on the Apex log channel.
   */
  'hub.alert': HubNotice & { severity: 'warning' | 'critical' };
  /** Progress messages of tasks and plugins, `notification` frames of nodes: `notification` on /ws and /events. */
  'hub.notification': HubNotice & { severity: 'info' | 'warning' };
  /** A streamed chunk of an LLM gateway request (`chat.completion.chunk`), for clients watching it. */
  'llm.chunk': { requestId: string; keyId: string | null; chunk: Record<string, unknown> };
  /** An LLM gateway request finished: its whole completion (aggregated when streamed), or its error. */
  'llm.completed': {
    requestId: string;
    keyId: string | null;
    completion: Record<string, unknown> | null;
    error: Record<string, unknown> | null;
  };
  /** A line for the Apex log channel (node log lines, agent-service output, hub warnings and errors). */
  'hub.log': HubLogLine;
}

/** What an alert or notification says, and the ids it is about. */
export interface HubNotice {
  message: string;
  /** Who raised it: `task`, `node`, `plugin`, `service`, `hub`. */
  source: string;
  task_id?: string;
  node_id?: string;
  service_id?: string;
  plugin?: string;
  /** The tenant it concerns; absent: the publisher's context's tenant, else hub-wide (global admins only). */
  tenant_id?: string;
  [extra: string]: unknown;
}

/** A line of the Apex log channel (its wire shape: see contracts/sockets/log-channel.ts). */
export type HubLogLine = LogLine;

type Handler<K extends keyof DomainEvents> = (payload: DomainEvents[K]) => void;

/** A typed, synchronous in-process bus. Handlers must not throw; errors are logged, never propagated. */
@Injectable()
export class EventBus {
  private readonly emitter = new EventEmitter({ captureRejections: false });
  private readonly logger = new Logger('EventBus');

  constructor() {
    this.emitter.setMaxListeners(100);
  }

  publish<K extends keyof DomainEvents>(event: K, payload: DomainEvents[K]): void {
    for (const handler of this.emitter.listeners(event) as Handler<K>[]) {
      try {
        handler(payload);
      } catch (e) {
        this.logger.error({ err: e }, `handler for ${event} failed`);
      }
    }
  }

  on<K extends keyof DomainEvents>(event: K, handler: Handler<K>): () => void {
    this.emitter.on(event, handler);
    return () => this.emitter.off(event, handler);
  }
}
