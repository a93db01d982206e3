import type { NodeVocabulary } from '../../common/events/event-bus.js';

export type NodeKind = 'device' | 'node' | 'worker';
/** Reported status: `online`/`offline` are stored; `busy` (at capacity) and `draining` are derived. */
export type NodeStatus = 'online' | 'busy' | 'offline' | 'draining';
export const NODE_STATUSES: readonly NodeStatus[] = ['online', 'busy', 'offline', 'draining'];

export interface NodeRow {
  id: string;
  /** Whose node it is: its key's tenant at its first registration; the id stays its own. */
  tenant_id: string;
  name: string | null;
  kind: NodeKind;
  vocabulary: NodeVocabulary;
  status: 'online' | 'offline';
  draining: boolean;
  capacity: number;
  tags: string[];
  capabilities: string[];
  info: Record<string, unknown>;
  version: string | null;
  instance_id: string | null;
  socket_id: string | null;
  /** It acknowledges assignments (declared, or seen answering an ack). */
  acks: boolean;
  /** It serves every tenant's tasks (registered with a global key and `shared: true`). */
  shared: boolean;
  registered_at: Date;
  connected_at: Date | null;
  last_heartbeat_at: Date | null;
  disconnected_at: Date | null;
  updated_at: Date;
  /** What its last heartbeat said (Apex nodes: `status`, `resources`, `stats`). */
  reported_status: string | null;
  resources: Record<string, unknown> | null;
  stats: Record<string, unknown> | null;
  /** Tasks it holds now (dispatched or running), joined in by the repository. */
  running: number;
}

export interface NodeRegistration {
  id: string;
  name: string | null;
  kind: NodeKind;
  vocabulary: NodeVocabulary;
  capacity: number;
  tags: string[];
  capabilities: string[];
  info: Record<string, unknown>;
  version: string | null;
  instanceId: string;
  socketId: string;
  /** Declared at registration (`acks: true`); undefined keeps what the hub learned before. */
  acks?: boolean;
  /** Serves every tenant (a global key's registration with `shared: true`); each registration says. */
  shared?: boolean;
}

export function reportedStatus(n: Pick<NodeRow, 'status' | 'draining' | 'running' | 'capacity'>): NodeStatus {
  if (n.status === 'offline') return 'offline';
  if (n.draining) return 'draining';
  return n.running >= n.capacity ? 'busy' : 'online';
}

/** A task a node holds, as told to it when it registers (again). */
export interface HeldTask {
  task_id: string;
  attempt: number;
  status: string;
}

/** What a heartbeat may carry besides "alive"; absent fields keep what was stored. */
export interface HeartbeatReport {
  status?: string;
  resources?: Record<string, unknown>;
  stats?: Record<string, unknown>;
}

/** How a node is connected: the Socket.IO device channel or the raw WebSocket node channel. */
export type NodeTransport = 'socket.io' | 'websocket';

/** Raw WebSocket connection ids carry this prefix, so every module can tell the transports apart. */
export const RAW_WS_CONNECTION_PREFIX = 'ws:';

export const transportOf = (socketId: string | null): NodeTransport | null =>
  socketId === null ? null : socketId.startsWith(RAW_WS_CONNECTION_PREFIX) ? 'websocket' : 'socket.io';
