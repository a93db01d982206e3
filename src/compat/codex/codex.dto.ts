import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsInt, IsOptional, IsString, Length, Max, MaxLength, Min } from 'class-validator';
import { IsPlainObject } from '../../common/validators.js';
import { PRIORITIES, type PriorityName } from '../../modules/tasks/task.types.js';

/** Codex task states as the seed names them. */
export const CODEX_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type CodexStatus = (typeof CODEX_STATUSES)[number];

/** Codex `sort` values (camelCase) and the task columns they sort by. */
export const CODEX_SORTS = ['startTime', 'createdAt', 'completedAt', 'priority'] as const;
export type CodexSort = (typeof CODEX_SORTS)[number];

/** The hub's longest lease (604,800 s) in the seed's milliseconds. */
const MAX_TIMEOUT_MS = 604_800_000;

/** `POST /tasks` body (seed 000). */
export class CodexSubmitTaskDto {
  @ApiProperty({ example: '创建一个用户登录组件' })
  @IsString({ message: 'prompt is required (a string)' })
  @Length(1, 200_000)
  prompt: string;

  @ApiPropertyOptional({ example: 'nodejs' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  environment?: string;

  @ApiPropertyOptional({ enum: PRIORITIES, default: 'medium' })
  @IsOptional()
  @IsIn(PRIORITIES)
  priority?: PriorityName;

  @ApiPropertyOptional({
    example: 300000,
    minimum: 1000,
    maximum: MAX_TIMEOUT_MS,
    description: 'Milliseconds (rounded up to whole seconds)',
  })
  @IsOptional()
  @IsInt({ message: 'timeout must be an integer number of milliseconds' })
  @Min(1000)
  @Max(MAX_TIMEOUT_MS)
  timeout?: number;

  @ApiPropertyOptional({ type: [String], example: ['src/components/', 'package.json'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  files?: string[];

  @ApiPropertyOptional({ example: 'prompt', description: 'Free-form kind of work (hub extension)' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  type?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsPlainObject()
  metadata?: Record<string, unknown>;
}

/** The keys `POST /tasks` knows; any other key of the body is kept in the task's `metadata`. */
export const CODEX_SUBMIT_KEYS: readonly string[] = [
  'prompt',
  'environment',
  'priority',
  'timeout',
  'files',
  'type',
  'metadata',
];

/**
 * `:id` of the Codex routes: any string (the seed's ids look like `task-1704067200000-abc123`);
 * one that is not a hub task id is simply not found (404 TASK_NOT_FOUND), as the seed expects.
 */
export class CodexTaskIdParam {
  @ApiProperty({ example: 'task-1704067200000-abc123' })
  @IsString()
  @MaxLength(200)
  id: string;
}

/** `GET /tasks` query (seed 000). */
export class CodexListQuery {
  @ApiPropertyOptional({ enum: CODEX_STATUSES })
  @IsOptional()
  @IsIn(CODEX_STATUSES)
  status?: CodexStatus;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ minimum: 1, default: 1 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  page?: number;

  @ApiPropertyOptional({ enum: CODEX_SORTS, default: 'createdAt' })
  @IsOptional()
  @IsIn(CODEX_SORTS)
  sort?: CodexSort;

  @ApiPropertyOptional({ enum: ['asc', 'desc'], default: 'desc' })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order?: 'asc' | 'desc';
}

/**
 * `POST /tasks/:id/reply` body (seed 000). The document lists the route as "继续执行任务" and
 * sends no body, so `message` is optional: without it the task is continued as it is.
 */
export class CodexReplyDto {
  @ApiPropertyOptional({
    example: '请同时添加单元测试',
    description: 'Appended to the conversation; without it the task is continued as it is',
  })
  @IsOptional()
  @IsString({ message: 'message must be a string' })
  @Length(1, 200_000)
  message?: string;
}
