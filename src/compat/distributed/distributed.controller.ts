import { Body, Controller, Get, Param, Post, Query, UseFilters } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTooManyRequestsResponse,
  ApiTags,
} from '@nestjs/swagger';
import { RawResponse } from '../../common/envelope.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { PACKAGE } from '../../common/package-info.js';
import { AppConfig } from '../../config/app-config.js';
import type { Principal } from '../../modules/auth/api-key.types.js';
import { Authenticated, CurrentPrincipal, Public } from '../../modules/auth/auth.decorators.js';
import { Dispatcher } from '../../modules/dispatch/dispatcher.service.js';
import { reportedStatus } from '../../modules/nodes/node.types.js';
import { NodesService } from '../../modules/nodes/nodes.service.js';
import { TaskIntakeService } from '../../modules/tasks/task-intake.service.js';
import { TaskQueriesService } from '../../modules/tasks/task-queries.service.js';
import { DispatchTaskDto, Seed004ListQuery, Seed004TaskIdParam } from './distributed.dto.js';
import {
  Seed004DeviceListView,
  Seed004DispatchedView,
  Seed004SystemView,
  Seed004TaskListView,
  Seed004TaskStatusView,
} from './distributed.view.js';
import { Seed004ExceptionFilter } from './seed004-exception.filter.js';
import { seed004Time } from './seed004-time.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (id: string): boolean => UUID.test(id);

/** `GET /`'s `system`, as the document shows it. */
export const SEED004_SYSTEM = '分布式任务系统';

const seedTime = (d: Date | null): string | null => (d ? seed004Time(d) : null);

/** Seed 004 (distributed task system) HTTP surface: its paths and shapes over the same services. */
@ApiTags('compat: distributed task system (seed 004)')
@RawResponse()
@UseFilters(Seed004ExceptionFilter)
@Controller()
export class DistributedController {
  constructor(
    private readonly intake: TaskIntakeService,
    private readonly taskQueries: TaskQueriesService,
    private readonly nodes: NodesService,
    private readonly dispatcher: Dispatcher,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @Public()
  @ApiOperation({
    summary: 'System status with connected devices and active tasks (with a key)',
    description: 'Open. `connected_devices` and `active_tasks` are null without a valid key (docs/security.md).',
  })
  @ApiOkResponse({ type: Seed004SystemView })
  @ApiTooManyRequestsResponse({ description: 'RATE_LIMITED' })
  async system(@CurrentPrincipal() who: Principal | undefined): Promise<Record<string, unknown>> {
    const [connected, active] = who
      ? await Promise.all([this.nodes.countConnected(), this.taskQueries.countInStatus('active')])
      : [null, null];
    return {
      // The document's name for the system: a client may check it to know it found its server.
      system: SEED004_SYSTEM,
      implementation: 'taskhub',
      version: PACKAGE.version,
      status: 'running',
      port: this.config.PORT,
      connected_devices: connected,
      active_tasks: active,
      timestamp: seed004Time(new Date()),
    };
  }

  @Get('api/devices')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Devices (seed 004 shape)' })
  @ApiOkResponse({ type: Seed004DeviceListView })
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR' })
  async devices(@Query() q: Seed004ListQuery): Promise<Record<string, unknown>> {
    const { rows, total } = await this.nodes.list({ limit: q.limit ?? 100, offset: 0 });
    return {
      success: true,
      devices: rows.map((n) => ({
        device_id: n.id,
        device_name: n.name,
        status: reportedStatus(n),
        last_heartbeat: seedTime(n.last_heartbeat_at),
        task_count: n.running,
        connection_info: { sid: n.socket_id, registered_at: seedTime(n.registered_at) },
      })),
      total,
    };
  }

  @Get('api/tasks')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Tasks (seed 004 shape), newest first' })
  @ApiOkResponse({ type: Seed004TaskListView })
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR' })
  async list(@Query() q: Seed004ListQuery): Promise<Record<string, unknown>> {
    // Status is the only filter here: total comes from the counters, exact.
    const { rows, total } = await this.taskQueries.list({ status: q.status, limit: q.limit ?? 100 });
    return {
      success: true,
      tasks: rows.map((t) => ({
        task_id: t.id,
        task_type: t.type,
        status: t.status,
        device_id: t.node_id,
        created_at: seedTime(t.created_at),
        data: t.data,
      })),
      total,
    };
  }

  @Post('api/dispatch-task')
  @Authenticated('client')
  @ApiOperation({ summary: 'Create a task and dispatch it now; answers with the chosen device (null while queued)' })
  @ApiCreatedResponse({ type: Seed004DispatchedView })
  @ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field' })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such device (details.field device_id)' })
  async dispatch(@Body() dto: DispatchTaskDto): Promise<Record<string, unknown>> {
    if (dto.device_id)
      await this.nodes.get(dto.device_id).catch(() => {
        throw new AppError(ErrorCode.NOT_FOUND, `Device not found: ${dto.device_id}`, { field: 'device_id' });
      });
    const { row } = await this.intake.submit({
      type: dto.task_type,
      data: dto.data ?? {},
      target_node_id: dto.device_id,
    });
    await this.dispatcher.runRound();
    const task = await this.taskQueries.get(row.id);
    // A named device that is busy gets the task as soon as it has room: it is still the device.
    const deviceId = task.node_id ?? dto.device_id ?? null;
    const device = deviceId ? await this.nodes.get(deviceId).catch(() => undefined) : undefined;
    return {
      success: true,
      task_id: task.id,
      device_id: deviceId,
      device_name: device?.name ?? null,
      status: task.status,
      message: task.node_id
        ? '任务分发成功'
        : dto.device_id
          ? '任务已排队，设备空闲后执行'
          : '任务已排队，等待可用设备',
    };
  }

  @Get('api/task/:id/status')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'Task status (seed 004 shape)' })
  @ApiOkResponse({ type: Seed004TaskStatusView })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such task' })
  async status(@Param() { id }: Seed004TaskIdParam): Promise<Record<string, unknown>> {
    if (!isUuid(id)) throw AppError.notFound('Task', id);
    const t = await this.taskQueries.get(id);
    return {
      success: true,
      task: {
        task_id: t.id,
        status: t.status,
        progress: t.progress,
        result: t.result,
        device_id: t.node_id,
        updated_at: seedTime(t.updated_at),
      },
    };
  }
}
