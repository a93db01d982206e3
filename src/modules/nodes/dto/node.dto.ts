import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length } from 'class-validator';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { TaskView } from '../../tasks/dto/task.view.js';
import { NODE_STATUSES, type NodeKind, type NodeStatus } from '../node.types.js';

export class NodeIdParam {
  @ApiProperty({ example: 'android_001' })
  @IsString()
  @Length(1, 200)
  id: string;
}

export class ListNodesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: NODE_STATUSES })
  @IsOptional()
  @IsIn(NODE_STATUSES)
  status?: NodeStatus;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 64)
  tag?: string;

  @ApiPropertyOptional({ enum: ['device', 'node', 'worker'] })
  @IsOptional()
  @IsIn(['device', 'node', 'worker'])
  kind?: NodeKind;
}

export class NodeView {
  @ApiProperty() node_id: string;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({ enum: ['device', 'node', 'worker'] }) kind: string;
  @ApiProperty({ enum: ['device', 'node'], description: 'device_register (seed 004) or node_register (Apex)' })
  vocabulary: string;
  @ApiProperty({ enum: NODE_STATUSES }) status: NodeStatus;
  @ApiProperty() capacity: number;
  @ApiProperty({ description: 'Tasks held now (dispatched or running)' }) running: number;
  @ApiProperty({ type: [String] }) tags: string[];
  @ApiProperty({ type: [String], description: 'Task types it takes; empty = any' }) capabilities: string[];
  @ApiProperty({
    description: "It serves every tenant's tasks (registered with a global key and shared: true; docs/flow-control.md)",
  })
  shared: boolean;
  @ApiProperty({ type: 'object', additionalProperties: true }) info: Record<string, unknown>;
  @ApiProperty({ nullable: true, type: String }) version: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Hub process holding its socket' }) instance_id:
    string | null;
  @ApiProperty({ format: 'date-time' }) registered_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) connected_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) last_heartbeat_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) disconnected_at: string | null;
  @ApiProperty({
    nullable: true,
    enum: ['socket.io', 'websocket'],
    description: 'Socket.IO device channel or the raw WebSocket node channel (null once offline)',
  })
  transport: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description: "Status its last heartbeat reported (the node's own words)",
  })
  reported_status: string | null;
  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'Resources its last heartbeat reported',
  })
  resources: Record<string, unknown> | null;
  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'Task statistics its last heartbeat reported',
  })
  heartbeat_stats: Record<string, unknown> | null;
}

export class NodeDetailView extends NodeView {
  @ApiProperty({ type: [TaskView] }) tasks: TaskView[];
  @ApiProperty({ example: { completed: 10, failed: 1, held: 1 } }) stats: {
    completed: number;
    failed: number;
    held: number;
  };
}

export class NodeListView {
  @ApiProperty({ type: [NodeView] }) nodes: NodeView[];
  @ApiProperty({ example: { total: 1, limit: 50, offset: 0, has_more: false } })
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}
