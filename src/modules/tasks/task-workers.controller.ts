import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { IdParam } from '../../common/id-param.dto.js';
import { RetryOnOutage } from '../../database/retry-on-outage.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { TaskView } from './dto/task.view.js';
import {
  AcquireTaskDto,
  CompleteTaskDto,
  FailTaskDto,
  HeartbeatDto,
  NextTaskQuery,
  ProgressDto,
} from './dto/worker.dto.js';
import { mapTask } from './task.mapper.js';
import { TaskHoldersService } from './task-holders.service.js';

/** The pull side of seed 002: workers claim, report and finish tasks over HTTP. */
@ApiTags('workers')
@Authenticated('worker')
@ApiConflictResponse({ description: 'CONFLICT (wrong state) or STALE_ATTEMPT (not the holder / older attempt)' })
@Controller('api/v1/tasks')
export class TaskWorkersController {
  constructor(private readonly holders: TaskHoldersService) {}

  @Get('next')
  @ApiOperation({
    summary:
      'Claim the highest-priority, oldest ready task this worker may take (work_path, tags, types); data is null when none',
  })
  @ApiEnvelope(TaskView, { nullable: true })
  async next(@Query() q: NextTaskQuery): Promise<TaskView | null> {
    const row = await this.holders.next(q.worker_id, { workPath: q.work_path, tags: q.tags, types: q.types });
    return row ? mapTask(row) : null;
  }

  @Post(':id/acquire')
  @HttpCode(200)
  @ApiOperation({ summary: 'Claim this task; 409 "Task already acquired by another worker" if held' })
  @ApiEnvelope(TaskView)
  async acquire(@Param() { id }: IdParam, @Body() dto: AcquireTaskDto): Promise<TaskView> {
    return mapTask(await this.holders.acquire(id, dto.worker_id));
  }

  @Post(':id/heartbeat')
  @RetryOnOutage()
  @HttpCode(200)
  @ApiOperation({ summary: 'Extend the lease (TASK_LEASE_SECONDS from now at least); may carry progress' })
  @ApiEnvelope(TaskView)
  async heartbeat(@Param() { id }: IdParam, @Body() dto: HeartbeatDto): Promise<TaskView> {
    return mapTask(await this.holders.heartbeat(id, dto ?? {}));
  }

  @Post(':id/progress')
  @RetryOnOutage()
  @HttpCode(200)
  @ApiOperation({ summary: 'Report progress (0–100) and a message' })
  @ApiEnvelope(TaskView)
  async progress(@Param() { id }: IdParam, @Body() dto: ProgressDto): Promise<TaskView> {
    return mapTask(await this.holders.progress(id, dto));
  }

  @Post(':id/complete')
  @RetryOnOutage()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Finish with a result; result.status other than success fails the attempt (retry policy applies)',
  })
  @ApiEnvelope(TaskView)
  async complete(@Param() { id }: IdParam, @Body() dto: CompleteTaskDto): Promise<TaskView> {
    return mapTask(await this.holders.complete(id, dto));
  }

  @Post(':id/fail')
  @RetryOnOutage()
  @HttpCode(200)
  @ApiOperation({ summary: 'Fail this attempt; retried with backoff while retries remain unless retryable is false' })
  @ApiEnvelope(TaskView)
  async fail(@Param() { id }: IdParam, @Body() dto: FailTaskDto): Promise<TaskView> {
    return mapTask(await this.holders.fail(id, dto));
  }
}
