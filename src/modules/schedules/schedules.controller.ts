import { Body, Controller, Delete, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { IdParam } from '../../common/id-param.dto.js';
import { Authenticated } from '../auth/auth.decorators.js';
import {
  CreateScheduleDto,
  ListSchedulesQuery,
  ScheduleListView,
  ScheduleView,
  UpdateScheduleDto,
} from './dto/schedule.dto.js';
import { mapSchedule } from './schedule.mapper.js';
import { SchedulesService } from './schedules.service.js';

@ApiTags('schedules')
@ApiBadRequestResponse({ description: 'VALIDATION_ERROR with details.field (cron, timezone, at, task.<field>, …)' })
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('api/v1/schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Post()
  @Authenticated('client')
  @ApiOperation({ summary: 'Start a task or push a notification at a time (at) or on a cron expression' })
  @ApiEnvelope(ScheduleView, { status: 201 })
  async create(@Body() dto: CreateScheduleDto): Promise<ScheduleView> {
    return mapSchedule(await this.schedules.create(dto));
  }

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: "The caller's tenant's schedules, newest first" })
  @ApiEnvelope(ScheduleListView)
  async list(@Query() q: ListSchedulesQuery): Promise<ScheduleListView> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { rows, total } = await this.schedules.list(limit, offset);
    return {
      schedules: rows.map(mapSchedule),
      pagination: { total, limit, offset, has_more: offset + rows.length < total },
    };
  }

  @Get(':id')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: 'One schedule: next_run_at, last_run_at, last_task_id, runs, last_error' })
  @ApiEnvelope(ScheduleView)
  async get(@Param() { id }: IdParam): Promise<ScheduleView> {
    return mapSchedule(await this.schedules.get(id));
  }

  @Patch(':id')
  @Authenticated('client')
  @ApiOperation({ summary: 'Change a schedule: enabled, cron or at, timezone, task or notification, name' })
  @ApiEnvelope(ScheduleView)
  async update(@Param() { id }: IdParam, @Body() dto: UpdateScheduleDto): Promise<ScheduleView> {
    return mapSchedule(await this.schedules.update(id, dto));
  }

  @Delete(':id')
  @Authenticated('client')
  @ApiOperation({ summary: 'Delete a schedule; answers the deleted schedule (tasks it started stay)' })
  @ApiEnvelope(ScheduleView)
  async remove(@Param() { id }: IdParam): Promise<ScheduleView> {
    return mapSchedule(await this.schedules.remove(id));
  }
}
