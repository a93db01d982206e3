import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { IdParam } from '../../common/id-param.dto.js';
import { Authenticated } from '../auth/auth.decorators.js';
import {
  CancelRolloutDto,
  CreateRolloutDto,
  ListRolloutsQuery,
  RolloutListView,
  RolloutView,
} from './dto/rollout.dto.js';
import { mapRollout } from './rollout.mapper.js';
import { RolloutsService } from './rollouts.service.js';

@ApiTags('rollouts')
@ApiBadRequestResponse({
  description: 'VALIDATION_ERROR with details.field (target, rate.per_minute, abort.0.threshold_percent, …)',
})
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('api/v1/rollouts')
export class RolloutsController {
  constructor(private readonly rollouts: RolloutsService) {}

  @Post()
  @Authenticated('client')
  @ApiOperation({ summary: 'Roll a task out to a set of nodes at a rate, aborting on failures (AWS IoT Jobs style)' })
  @ApiEnvelope(RolloutView, { status: 201 })
  async create(@Body() dto: CreateRolloutDto): Promise<RolloutView> {
    return mapRollout(await this.rollouts.create(dto));
  }

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: "The caller's tenant's rollouts, newest first, with live counts" })
  @ApiEnvelope(RolloutListView)
  async list(@Query() q: ListRolloutsQuery): Promise<RolloutListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total, counts } = await this.rollouts.list(limit, offset);
    return {
      rollouts: rows.map((r) => mapRollout(r, counts.get(r.id))),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One rollout: status, per-state counts and every node with its status' })
  @ApiEnvelope(RolloutView)
  async get(@Param() { id }: IdParam): Promise<RolloutView> {
    const { row, counts, nodes } = await this.rollouts.get(id);
    return mapRollout(row, counts, nodes);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Authenticated('client')
  @ApiConflictResponse({ description: 'CONFLICT: the rollout already ended' })
  @ApiOperation({ summary: 'Cancel a rollout: nothing more is released, its open tasks are cancelled' })
  @ApiEnvelope(RolloutView)
  async cancel(@Param() { id }: IdParam, @Body() dto: CancelRolloutDto): Promise<RolloutView> {
    return mapRollout(await this.rollouts.cancel(id, dto.reason));
  }
}
