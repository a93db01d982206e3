import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { NodeLogListView, NodeLogsQuery } from './dto/node-logs.dto.js';
import { NodeLogsService } from './node-logs.service.js';

@ApiTags('nodes')
@Controller('api/v1/logs')
export class NodeLogsController {
  constructor(private readonly logs: NodeLogsService) {}

  @Get()
  @Authenticated('admin')
  @ApiOperation({ summary: 'Log lines nodes sent (newest first, bounded by NODE_LOG_RETENTION_LINES); admin' })
  @ApiEnvelope(NodeLogListView)
  async list(@Query() q: NodeLogsQuery): Promise<NodeLogListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    if (q.source !== undefined && q.source !== 'node')
      return { logs: [], pagination: { total: 0, limit, offset, has_more: false } };
    const { rows, total } = await this.logs.list({
      level: q.level,
      node_id: q.node_id,
      task_id: q.task_id,
      limit,
      offset,
    });
    return {
      logs: rows.map((r) => ({
        id: String(r.id),
        time: r.created_at.toISOString(),
        level: r.level,
        source: 'node',
        node_id: r.node_id,
        task_id: r.task_id,
        message: r.message,
        data: r.data,
      })),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }
}
