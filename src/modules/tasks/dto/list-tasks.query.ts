import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsISO8601,
  IsNumber,
  IsOptional,
  IsPositive,
  IsString,
  Length,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { TASK_SORTS } from '../task-cursor.js';
import { EVENT_LEVELS, type EventLevel } from '../task.types.js';

export { TASK_SORTS };

export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ minimum: 0, default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  offset?: number;
}

export class ListTasksQuery extends PageQuery {
  @ApiPropertyOptional({
    description: 'Opaque keyset cursor: `pagination.next_cursor` of the previous page (same sort and order, no offset)',
  })
  @IsOptional()
  @IsString()
  @Length(1, 300)
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'cursor must be a cursor this list returned' })
  cursor?: string;

  @ApiPropertyOptional({
    example: 'waiting,working',
    description:
      'Comma list: pending, dispatched, running, completed, failed, cancelled, timed_out, or waiting/working/queued/active',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  status?: string;

  @ApiPropertyOptional({ example: 'high,urgent', description: 'Comma list of low, medium, high, urgent' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  priority?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 64)
  tag?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 100)
  type?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  worker_id?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  node_id?: string;

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  created_after?: string;

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  created_before?: string;

  @ApiPropertyOptional({ enum: TASK_SORTS, default: 'created_at' })
  @IsOptional()
  @IsIn(TASK_SORTS)
  sort?: (typeof TASK_SORTS)[number];

  @ApiPropertyOptional({ enum: ['asc', 'desc'], default: 'desc' })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order?: 'asc' | 'desc';
}

export class TaskLogsQuery {
  @ApiPropertyOptional({ format: 'date-time', description: 'Only events after this time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ enum: EVENT_LEVELS, description: 'Minimum level' })
  @IsOptional()
  @IsIn(EVENT_LEVELS)
  level?: EventLevel;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 200 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class StatisticsQuery {
  @ApiPropertyOptional({ example: '24h', description: 'Window of the time series and rates: <n>h or <n>d, up to 90d' })
  @IsOptional()
  @IsString()
  @Length(2, 5)
  period?: string;

  @ApiPropertyOptional({ enum: ['minute', 'hour', 'day'], default: 'hour' })
  @IsOptional()
  @IsIn(['minute', 'hour', 'day'])
  interval?: 'minute' | 'hour' | 'day';
}

/** `GET /api/v1/tasks/:id`: optionally wait for the task to finish. */
export class GetTaskQuery {
  @ApiPropertyOptional({
    minimum: 0,
    exclusiveMinimum: true,
    maximum: 60,
    description: 'Wait up to this many seconds for the task to finish',
  })
  @IsOptional()
  @Type(() => Number)
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'wait_seconds must be a number' })
  @IsPositive({ message: 'wait_seconds must be greater than 0' })
  @Max(60, { message: 'wait_seconds must not be greater than 60' })
  wait_seconds?: number;
}
