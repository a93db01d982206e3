import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsISO8601, IsOptional, IsString, Length, ValidateNested } from 'class-validator';
import { IsPlainObject } from '../../../common/validators.js';
import { CreateTaskDto } from '../../tasks/dto/create-task.dto.js';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { SEVERITIES, type Severity } from '../schedule.types.js';

export class ScheduledNotificationDto {
  @ApiProperty({ example: 'Time to back up the photos' })
  @IsString()
  @Length(1, 2000)
  message: string;

  @ApiPropertyOptional({ enum: SEVERITIES, default: 'info' })
  @IsOptional()
  @IsIn(SEVERITIES)
  severity?: Severity;

  @ApiPropertyOptional({ description: 'The node the notification is about' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  node_id?: string;

  @ApiPropertyOptional({ description: 'The task the notification is about' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  task_id?: string;
}

/** Shared by create and update: every field optional here; the service checks the combinations. */
class ScheduleFields {
  @ApiPropertyOptional({ example: 'nightly-backup' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional({
    example: '*/5 * * * *',
    description:
      'minute hour day-of-month month day-of-week (or 6 fields, seconds first); *, lists, ranges, steps, names; @daily etc. Exactly one of cron and at.',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cron?: string;

  @ApiPropertyOptional({ example: 'Europe/Berlin', default: 'UTC', description: 'IANA time zone of the cron fields' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  timezone?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Fire once at this time (in the future)' })
  @IsOptional()
  @IsISO8601({ strict: true })
  at?: string;

  @ApiPropertyOptional({
    type: CreateTaskDto,
    description:
      'The body of POST /api/v1/tasks, submitted at each fire (metadata gets schedule_id; idempotency_key and run_at are the schedule’s). Exactly one of task and notification.',
  })
  @IsOptional()
  @IsPlainObject()
  @ValidateNested()
  @Type(() => CreateTaskDto)
  task?: CreateTaskDto;

  @ApiPropertyOptional({ type: ScheduledNotificationDto, description: 'Pushed as `notification` to /ws and /events' })
  @IsOptional()
  @IsPlainObject()
  @ValidateNested()
  @Type(() => ScheduledNotificationDto)
  notification?: ScheduledNotificationDto;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

export class CreateScheduleDto extends ScheduleFields {}

/** Giving `cron` replaces `at` and the other way round; `task` replaces `notification` likewise. */
export class UpdateScheduleDto extends ScheduleFields {}

/** `limit` (1-200, default 50) and `offset`, as the other lists. */
export class ListSchedulesQuery extends PageQuery {}

export class ScheduleView {
  @ApiProperty({ format: 'uuid' }) schedule_id: string;
  @ApiProperty({ format: 'uuid', description: 'Same as schedule_id' }) id: string;
  @ApiProperty({ type: String, nullable: true }) name: string | null;
  @ApiProperty({ type: String, nullable: true }) cron: string | null;
  @ApiProperty({ example: 'UTC' }) timezone: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) at: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) task: Record<string, unknown> | null;
  @ApiProperty({ type: ScheduledNotificationDto, nullable: true }) notification: ScheduledNotificationDto | null;
  @ApiProperty() enabled: boolean;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When it fires next; null: disabled or spent',
  })
  next_run_at: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'The slot it last fired' })
  last_run_at: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) last_task_id: string | null;
  @ApiProperty({ description: 'How many times it fired' }) runs: number;
  @ApiProperty({ type: String, nullable: true, description: 'Why the last fire could not start its task' })
  last_error: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class SchedulePaginationView {
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
  @ApiProperty() has_more: boolean;
}

export class ScheduleListView {
  @ApiProperty({ type: [ScheduleView] }) schedules: ScheduleView[];
  @ApiProperty({ type: SchedulePaginationView }) pagination: SchedulePaginationView;
}
