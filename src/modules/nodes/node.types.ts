import type { NodeVocabulary } from '../../common/events/event-bus.js';

export type NodeKind = 'device' | 'node' | 'worker';
/** Reported status: `online`/`offline` are stored; `busy` (at capacity) and `draining` are derived. */
export type NodeStatus = 'online' | 'busy' | 'offline' | 'draining';
export const NODE_STATUSES: readonly NodeStatus[] = ['online', 'busy', 'offline', 'draining'];

export interface NodeRow {
  id: string;
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
  registered_at: Date;
  connected_at: Date | null;
  last_heartbeat_at: Date | null;
  disconnected_at: Date | null;
  updated_at: Date;
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
