import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { AppError } from '../../common/errors.js';
import { IdParam } from '../../common/id-param.dto.js';
import { Authenticated } from '../auth/auth.decorators.js';
import { BatchCreateTasksDto, CreateTaskDto } from './dto/create-task.dto.js';
import { validateBatchBody } from './dto/create-task.validator.js';
import { GetTaskQuery, ListTasksQuery, TaskLogsQuery } from './dto/list-tasks.query.js';
import { BatchView, TaskListView, TaskLogsView, TaskView } from './dto/task.view.js';
import { CancelTaskDto, ReplyTaskDto, RetryTaskDto } from './dto/worker.dto.js';
import { mapTask, mapTaskEvent } from './task.mapper.js';
import { TaskIntakeService } from './task-intake.service.js';
import { TaskQueriesService } from './task-queries.service.js';
import { TaskActionsService } from './task-actions.service.js';

@ApiTags('tasks')
@ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
@Controller('api/v1/tasks')
export class TasksController {
  constructor(
    private readonly intake: TaskIntakeService,
    private readonly taskQueries: TaskQueriesService,
    private readonly actions: TaskActionsService,
  ) {}

  @Post()
  @Authenticated('client')
  @ApiOperation({ summary: 'Submit a task (durable before the answer)' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key → the first task, 200 instead of 201' })
  @ApiEnvelope(TaskView, { status: 201 })
  async create(
    @Body() dto: CreateTaskDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TaskView> {
    if (idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 200)) {
      throw AppError.validation('Idempotency-Key', 'must be 1 to 200 characters');
    }
    const { row, created } = await this.intake.submit(dto, idempotencyKey);
    if (!created) res.status(200);
    return mapTask(row);
  }

  @Post('batch')
  @Authenticated('client')
  @ApiOperation({ summary: 'Submit up to 1,000 tasks; each item answers on its own' })
  @ApiEnvelope(BatchView, { status: 201 })
  @ApiBody({ type: BatchCreateTasksDto })
  // `unknown`: the global ValidationPipe passes the body as it came (no class-transformer copy of
  // a thousand items); validateBatchBody applies the same preparation and rules to it.
  async createBatch(@Body() body: unknown): Promise<BatchView> {
    const dto = await validateBatchBody(body);
    const results = await this.intake.submitBatch(dto.tasks);
    const view = results.map((r) =>
      r.success
        ? { index: r.index, success: true, task_id: r.row.id, created: r.created }
        : {
            index: r.index,
            success: false,
            error: { code: r.error.code, message: r.error.message, details: r.error.details },
          },
    );
    const created = view.filter((v) => v.success).length;
    return { total: view.length, created, failed: view.length - created, results: view };
  }

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'List tasks with filters; keyset pages (cursor) or offset; never counts the table' })
  @ApiEnvelope(TaskListView)
  async list(@Query() query: ListTasksQuery): Promise<TaskListView> {
    const page = await this.taskQueries.list(query);
    const held = await this.taskQueries.heldKeysOf(page.rows);
    return {
      tasks: page.rows.map((t) => mapTask(t, held)),
      pagination: {
        total: page.total,
        limit: page.limit,
        offset: page.offset,
        has_more: page.hasMore,
        next_cursor: page.nextCursor,
        total_capped: page.totalCapped,
      },
    };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Get one task; with wait_seconds, answers when it finishes or after that many seconds' })
  @ApiEnvelope(TaskView)
  @ApiNotFoundResponse({ description: 'NOT_FOUND' })
  async get(
    @Param() { id }: IdParam,
    @Query() q: GetTaskQuery,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TaskView> {
    if (q.wait_seconds === undefined) {
      const row = await this.taskQueries.get(id);
      return mapTask(row, await this.taskQueries.heldKeysOf([row]));
    }
    const gone = new AbortController();
    res.on('close', () => gone.abort()); // the client went away: its waiter goes too
    return mapTask(await this.taskQueries.getWhenFinished(id, q.wait_seconds, gone.signal));
  }

  @Get(':id/logs')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: "The task's events: transitions, progress, replies, rejected reports" })
  @ApiEnvelope(TaskLogsView)
  async logs(@Param() { id }: IdParam, @Query() query: TaskLogsQuery): Promise<TaskLogsView> {
    return { task_id: id, logs: (await this.taskQueries.logs(id, query)).map(mapTaskEvent) };
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Authenticated('client')
  @ApiOperation({ summary: 'Cancel a pending, dispatched or running task' })
  @ApiEnvelope(TaskView)
  @ApiConflictResponse({ description: 'CONFLICT: already finished' })
  async cancel(@Param() { id }: IdParam, @Body() dto: CancelTaskDto): Promise<TaskView> {
    return mapTask(await this.actions.cancel(id, dto?.reason));
  }

  @Delete(':id')
  @Authenticated('client')
  @ApiOperation({ summary: 'Cancel a task (same as POST /cancel without a reason)' })
  @ApiEnvelope(TaskView)
  async remove(@Param() { id }: IdParam): Promise<TaskView> {
    return mapTask(await this.actions.cancel(id, 'Deleted by client'));
  }

  @Post(':id/retry')
  @HttpCode(200)
  @Authenticated('client')
  @ApiOperation({ summary: 'Re-queue a finished task' })
  @ApiEnvelope(TaskView)
  @ApiConflictResponse({ description: 'RETRY_LIMIT_EXCEEDED past max_retries without force; CONFLICT if not finished' })
  async retry(@Param() { id }: IdParam, @Body() dto: RetryTaskDto): Promise<TaskView> {
    return mapTask(await this.actions.retry(id, dto?.force ?? false));
  }

  @Post(':id/reply')
  @HttpCode(200)
  @Authenticated('client')
  @ApiOperation({ summary: 'Add a message to the conversation; a finished task goes back to the queue' })
  @ApiEnvelope(TaskView)
  async reply(@Param() { id }: IdParam, @Body() dto: ReplyTaskDto): Promise<TaskView> {
    return mapTask(await this.actions.reply(id, dto.message));
  }
}
