import { Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { mapTask } from '../tasks/task.mapper.js';
import { TaskQueriesService } from '../tasks/task-queries.service.js';
import { TaskRecoveryService } from '../tasks/task-recovery.service.js';
import { ListNodesQuery, NodeDetailView, NodeIdParam, NodeListView, NodeView } from './dto/node.dto.js';
import { mapNode } from './node.mapper.js';
import { NodesService } from './nodes.service.js';

@ApiTags('nodes')
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('api/v1/nodes')
export class NodesController {
  constructor(
    private readonly nodes: NodesService,
    private readonly taskQueries: TaskQueriesService,
    private readonly recovery: TaskRecoveryService,
  ) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Devices and nodes with live status (online, busy, offline, draining) and load' })
  @ApiEnvelope(NodeListView)
  async list(@Query() q: ListNodesQuery): Promise<NodeListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.nodes.list({ status: q.status, tag: q.tag, kind: q.kind, limit, offset });
    return { nodes: rows.map(mapNode), pagination: { total, limit, offset, has_more: offset + rows.length < total } };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One node with the tasks it holds and its counts' })
  @ApiEnvelope(NodeDetailView)
  async get(@Param() { id }: NodeIdParam): Promise<NodeDetailView> {
    const node = await this.nodes.get(id);
    const [held, stats] = await Promise.all([this.taskQueries.heldBy(id), this.taskQueries.nodeStats(id)]);
    return { ...mapNode(node), tasks: held.map((t) => mapTask(t)), stats };
  }

  @Post(':id/drain')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Stop giving it new tasks (admin); what it holds runs to the end' })
  @ApiEnvelope(NodeView)
  async drain(@Param() { id }: NodeIdParam): Promise<NodeView> {
    return mapNode(await this.nodes.setDraining(id, true));
  }

  @Post(':id/undrain')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Take new tasks again (admin)' })
  @ApiEnvelope(NodeView)
  async undrain(@Param() { id }: NodeIdParam): Promise<NodeView> {
    return mapNode(await this.nodes.setDraining(id, false));
  }

  @Delete(':id')
  @Authenticated('admin')
  @ApiOperation({ summary: 'Disconnect and forget it (admin); its tasks are re-queued by the retry policy' })
  @ApiEnvelope(NodeView)
  async remove(@Param() { id }: NodeIdParam): Promise<NodeView> {
    const node = await this.nodes.remove(id);
    await this.recovery.releaseNodeTasks(id);
    return { ...mapNode(node), status: 'offline' };
  }
}
