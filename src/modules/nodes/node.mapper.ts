import { type NodeRow, reportedStatus, transportOf } from './node.types.js';
import type { NodeView } from './dto/node.dto.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function mapNode(n: NodeRow): NodeView {
  return {
    node_id: n.id,
    name: n.name,
    kind: n.kind,
    vocabulary: n.vocabulary,
    status: reportedStatus(n),
    capacity: n.capacity,
    running: n.running,
    tags: n.tags,
    capabilities: n.capabilities,
    shared: n.shared,
    info: n.info,
    version: n.version,
    instance_id: n.instance_id,
    registered_at: n.registered_at.toISOString(),
    connected_at: iso(n.connected_at),
    last_heartbeat_at: iso(n.last_heartbeat_at),
    disconnected_at: iso(n.disconnected_at),
    transport: n.status === 'online' ? transportOf(n.socket_id) : null,
    reported_status: n.reported_status,
    resources: n.resources,
    heartbeat_stats: n.stats,
  };
}
