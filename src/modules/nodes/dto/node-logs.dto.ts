import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Length } from 'class-validator';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { NODE_LOG_LEVELS, type NodeLogLevel } from '../node-logs.repository.js';

/** The filters of GET /api/v1/logs, the same as the Apex log channel's query. */
export class NodeLogsQuery extends PageQuery {
  @ApiPropertyOptional({ enum: NODE_LOG_LEVELS, description: 'This level and the more severe ones' })
  @IsOptional()
  @IsIn(NODE_LOG_LEVELS)
  level?: NodeLogLevel;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  node_id?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  task_id?: string;

  @ApiPropertyOptional({ description: 'Only `node` lines are stored; any other source lists nothing' })
  @IsOptional()
  @IsString()
  @Length(1, 32)
  source?: string;
}

export class NodeLogView {
  @ApiProperty() id: string;
  @ApiProperty({ format: 'date-time' }) time: string;
  @ApiProperty({ enum: NODE_LOG_LEVELS }) level: string;
  @ApiProperty({ example: 'node' }) source: string;
  @ApiProperty() node_id: string;
  @ApiProperty({ nullable: true, type: String }) task_id: string | null;
  @ApiProperty() message: string;
  @ApiProperty({ nullable: true, description: 'What the node sent as `data`' }) data: unknown;
}

export class NodeLogListView {
  @ApiProperty({ type: [NodeLogView] }) logs: NodeLogView[];
  @ApiProperty({ example: { total: 1, limit: 50, offset: 0, has_more: false } })
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}
