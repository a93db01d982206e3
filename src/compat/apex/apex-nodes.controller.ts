import { Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../../modules/auth/auth.decorators.js';
import { ListNodesQuery, NodeIdParam } from '../../modules/nodes/dto/node.dto.js';
import { NodesService } from '../../modules/nodes/nodes.service.js';
import { mapTask } from '../../modules/tasks/task.mapper.js';
import { TaskQueriesService } from '../../modules/tasks/task-queries.service.js';
import { TaskRecoveryService } from '../../modules/tasks/task-recovery.service.js';
import { ApexNodeDetailView, ApexNodeListView, ApexNodeView, mapApexNode } from './apex-node.view.js';

/** Seed 001 `/v1/nodes/*` ("查看节点状态（需鉴权）"): the nodes service, in Apex's words. */
@ApiTags('compat: Apex Bridge (seed 001)')
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('v1/nodes')
export class ApexNodesController {
  constructor(
    private readonly nodes: NodesService,
    private readonly taskQueries: TaskQueriesService,
    private readonly recovery: TaskRecoveryService,
  ) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Nodes with status, last heartbeat (resources, stats), load and transport' })
  @ApiEnvelope(ApexNodeListView)
  async list(@Query() q: ListNodesQuery): Promise<ApexNodeListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.nodes.list({ status: q.status, tag: q.tag, kind: q.kind, limit, offset });
    return {
      nodes: rows.map(mapApexNode),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One node with the tasks it holds' })
  @ApiEnvelope(ApexNodeDetailView)
  async get(@Param() { id }: NodeIdParam): Promise<ApexNodeDetailView> {
    const node = await this.nodes.get(id);
    return { ...mapApexNode(node), tasks: (await this.taskQueries.heldBy(id)).map((t) => mapTask(t)) };
  }

  @Post(':id/drain')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Stop giving it new tasks (admin)' })
  @ApiEnvelope(ApexNodeView)
  async drain(@Param() { id }: NodeIdParam): Promise<ApexNodeView> {
    return mapApexNode(await this.nodes.setDraining(id, true));
  }

  @Post(':id/undrain')
  @HttpCode(200)
  @Authenticated('admin')
  @ApiOperation({ summary: 'Take new tasks again (admin)' })
  @ApiEnvelope(ApexNodeView)
  async undrain(@Param() { id }: NodeIdParam): Promise<ApexNodeView> {
    return mapApexNode(await this.nodes.setDraining(id, false));
  }

  @Delete(':id')
  @Authenticated('admin')
  @ApiOperation({ summary: 'Disconnect and forget it (admin); its tasks are re-queued by the retry policy' })
  @ApiEnvelope(ApexNodeView)
  async remove(@Param() { id }: NodeIdParam): Promise<ApexNodeView> {
    const node = await this.nodes.remove(id);
    await this.recovery.releaseNodeTasks(id);
    return { ...mapApexNode(node), status: 'offline', transport: null };
  }
}
