import { ApiProperty } from '@nestjs/swagger';
import { type NodeRow, reportedStatus, transportOf } from '../../modules/nodes/node.types.js';
import { TaskView } from '../../modules/tasks/dto/task.view.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** A node as seed 001's `/v1/nodes` shows it: identity, persona, last heartbeat, load, transport. */
export class ApexNodeView {
  @ApiProperty() id: string;
  @ApiProperty() node_id: string;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({
    nullable: true,
    enum: ['worker', 'companion', 'custom'],
    description: 'As registered (node_register `type`)',
  })
  type: string | null;
  @ApiProperty({ type: 'array', items: {}, description: 'As registered (strings or objects)' }) capabilities: unknown[];
  @ApiProperty({ nullable: true, description: 'As registered' }) persona: unknown;
  @ApiProperty({ nullable: true, type: String }) version: string | null;
  @ApiProperty({ enum: ['online', 'busy', 'offline', 'draining'] }) status: string;
  @ApiProperty({ nullable: true, type: String, description: "Status its last heartbeat reported, in the node's words" })
  reported_status: string | null;
  @ApiProperty({ nullable: true, type: 'object', additionalProperties: true }) resources: Record<
    string,
    unknown
  > | null;
  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'Task statistics its last heartbeat reported',
  })
  stats: Record<string, unknown> | null;
  @ApiProperty() capacity: number;
  @ApiProperty({ description: 'Tasks it holds now' }) active_tasks: number;
  @ApiProperty({ type: [String] }) tags: string[];
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) last_heartbeat: string | null;
  @ApiProperty({ nullable: true, enum: ['websocket', 'socket.io'], description: 'null once offline' }) transport:
    string | null;
  @ApiProperty({ format: 'date-time' }) registered_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) connected_at: string | null;
}

export class ApexNodeDetailView extends ApexNodeView {
  @ApiProperty({ type: [TaskView] }) tasks: TaskView[];
}

export class ApexNodeListView {
  @ApiProperty({ type: [ApexNodeView] }) nodes: ApexNodeView[];
  @ApiProperty({ example: { total: 1, limit: 50, offset: 0, has_more: false } })
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}

export function mapApexNode(n: NodeRow): ApexNodeView {
  const info = n.info ?? {};
  return {
    id: n.id,
    node_id: n.id,
    name: n.name,
    type: typeof info.type === 'string' ? info.type : null,
    capabilities: Array.isArray(info.capabilities) ? info.capabilities : n.capabilities,
    persona: info.persona ?? null,
    version: n.version,
    status: reportedStatus(n),
    reported_status: n.reported_status,
    resources: n.resources,
    stats: n.stats,
    capacity: n.capacity,
    active_tasks: n.running,
    tags: n.tags,
    last_heartbeat: iso(n.last_heartbeat_at),
    transport: n.status === 'online' ? transportOf(n.socket_id) : null,
    registered_at: n.registered_at.toISOString(),
    connected_at: iso(n.connected_at),
  };
}
