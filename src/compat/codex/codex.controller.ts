import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req, UseFilters } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { Request } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { Authenticated } from '../../modules/auth/auth.decorators.js';
import { DurationEstimates } from '../../modules/tasks/duration-estimates.js';
import { TaskIntakeService } from '../../modules/tasks/task-intake.service.js';
import { TaskQueriesService } from '../../modules/tasks/task-queries.service.js';
import { TaskActionsService } from '../../modules/tasks/task-actions.service.js';
import { CodexExceptionFilter } from './codex-exception.filter.js';
import {
  ApiCodexOk,
  CodexCancelledView,
  CodexLogsView,
  CodexRepliedView,
  CodexSubmittedView,
  CodexTaskListView,
  CodexTaskStatusView,
} from './codex.view.js';
import { CodexListQuery, CodexReplyDto, CodexSubmitTaskDto, CodexTaskIdParam } from './codex.dto.js';
import {
  codexOk,
  type CodexOk,
  codexTaskId,
  listItemView,
  logView,
  parseSubmitBody,
  statusView,
  submitView,
  toCodexStatus,
  toCreateTask,
  toListQuery,
} from './codex.mapper.js';

/** Codex Father 2.0 (seed 000) `/tasks…` surface: camelCase shapes over TasksService, nothing more. */
@ApiTags('compat: Codex Father (seed 000)')
@RawResponse()
@UseFilters(CodexExceptionFilter)
@Controller('tasks')
export class CodexController {
  constructor(
    private readonly intake: TaskIntakeService,
    private readonly taskQueries: TaskQueriesService,
    private readonly actions: TaskActionsService,
    private readonly estimates: DurationEstimates,
  ) {}

  @Post()
  @Authenticated('client')
  @ApiOperation({
    summary: 'Submit a task (Codex shape; timeout in ms; keys beyond the documented ones go into metadata)',
  })
  @ApiBody({ type: CodexSubmitTaskDto })
  @ApiCodexOk(CodexSubmittedView, 201)
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  async submit(
    @Body() body: Record<string, unknown>,
    @Req() req: Request,
  ): Promise<CodexOk<ReturnType<typeof submitView>>> {
    // Validated here, not by the global pipe: unknown keys are kept (metadata), not refused.
    const { dto, extra } = parseSubmitBody(body);
    const { row } = await this.intake.submit(toCreateTask(dto, extra));
    return codexOk(submitView(row, await this.estimates.forType(row.type)), req.requestId, '任务已成功提交');
  }

  @Get()
  @Authenticated('client')
  @ApiOperation({ summary: 'List tasks (status in Codex words, page/limit, camelCase sort)' })
  @ApiCodexOk(CodexTaskListView)
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  async list(@Query() query: CodexListQuery, @Req() req: Request): Promise<CodexOk<Record<string, unknown>>> {
    // Status is the only filter here: total comes from the counters, exact.
    const { rows, total, limit, hasMore } = await this.taskQueries.list(toListQuery(query));
    return codexOk(
      {
        tasks: rows.map(listItemView),
        pagination: { page: query.page ?? 1, limit, total, hasMore },
      },
      req.requestId,
    );
  }

  @Get(':id')
  @Authenticated('client')
  @ApiOperation({ summary: 'Task status, progress, duration and result' })
  @ApiCodexOk(CodexTaskStatusView)
  @ApiNotFoundResponse({ description: 'TASK_NOT_FOUND with details.taskId' })
  async status(@Param() { id }: CodexTaskIdParam, @Req() req: Request): Promise<CodexOk<Record<string, unknown>>> {
    return codexOk(statusView(await this.taskQueries.get(codexTaskId(id))), req.requestId);
  }

  @Post(':id/reply')
  @HttpCode(200)
  @Authenticated('client')
  @ApiOperation({
    summary: 'Continue a task, with a message or none (a finished task goes back to the queue)',
    description: 'The document sends no body: without `message` a running task is left as it is.',
  })
  @ApiBody({ type: CodexReplyDto, required: false })
  @ApiCodexOk(CodexRepliedView)
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  @ApiNotFoundResponse({ description: 'TASK_NOT_FOUND with details.taskId' })
  async reply(
    @Param() { id }: CodexTaskIdParam,
    @Body() dto: CodexReplyDto,
    @Req() req: Request,
  ): Promise<CodexOk<Record<string, unknown>>> {
    const row = await this.actions.reply(codexTaskId(id), dto.message);
    return codexOk(
      { taskId: row.id, status: toCodexStatus(row.status), messages: row.messages.length },
      req.requestId,
      '任务已继续执行',
    );
  }

  @Delete(':id')
  @Authenticated('client')
  @ApiOperation({ summary: 'Cancel a task (409 if it has already finished)' })
  @ApiCodexOk(CodexCancelledView)
  @ApiNotFoundResponse({ description: 'TASK_NOT_FOUND with details.taskId' })
  @ApiConflictResponse({ description: 'CONFLICT: already finished' })
  async cancel(@Param() { id }: CodexTaskIdParam, @Req() req: Request): Promise<CodexOk<Record<string, unknown>>> {
    const row = await this.actions.cancel(codexTaskId(id), 'Cancelled by client');
    return codexOk({ taskId: row.id, status: toCodexStatus(row.status) }, req.requestId, '任务已取消');
  }

  @Get(':id/logs')
  @Authenticated('client')
  @ApiOperation({ summary: "The task's log: transitions, progress, replies" })
  @ApiCodexOk(CodexLogsView)
  @ApiNotFoundResponse({ description: 'TASK_NOT_FOUND with details.taskId' })
  async logs(@Param() { id }: CodexTaskIdParam, @Req() req: Request): Promise<CodexOk<Record<string, unknown>>> {
    const events = await this.taskQueries.logs(codexTaskId(id), {});
    return codexOk({ taskId: id, logs: events.map(logView) }, req.requestId);
  }
}
