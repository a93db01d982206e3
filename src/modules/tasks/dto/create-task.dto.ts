import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import { IsAbsolutePath, IsPlainObject } from '../../../common/validators.js';
import { KEY_PATTERN, KEY_RULE } from '../../concurrency/concurrency-window.js';
import { MetadataConcurrencyKey } from '../../concurrency/concurrency-key.validator.js';
import { PRIORITIES, type PriorityName } from '../task.types.js';

export class CreateTaskDto {
  @ApiPropertyOptional({ example: 'prompt', description: 'Free-form kind of work, used for routing and filters' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  type?: string;

  @ApiPropertyOptional({ example: 'Analyze the codebase and identify potential security vulnerabilities' })
  @ValidateIf((o: CreateTaskDto) => o.data === undefined || o.prompt !== undefined)
  @IsString({ message: 'prompt is required (a string) unless data is given' })
  @MaxLength(200_000)
  prompt?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Structured input for the task' })
  @IsOptional()
  @IsPlainObject()
  data?: Record<string, unknown>;

  @ApiPropertyOptional({ enum: PRIORITIES, default: 'medium' })
  @IsOptional()
  @IsIn(PRIORITIES)
  priority?: PriorityName;

  @ApiPropertyOptional({ type: [String], example: ['security', 'analysis'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @Length(1, 64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({
    type: [String],
    example: ['android'],
    description: 'Pushed only to nodes that have all these tags',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Length(1, 64, { each: true })
  required_tags?: string[];

  @ApiPropertyOptional({
    example: '/home/user/projects/my-project',
    description: 'Absolute path; pull workers claim by prefix',
  })
  @IsOptional()
  @IsString()
  @IsAbsolutePath()
  @MaxLength(4096)
  work_directory?: string;

  @ApiPropertyOptional({ example: 'nodejs' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  environment?: string;

  @ApiPropertyOptional({ type: [String], example: ['src/app.js'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  files?: unknown[];

  @ApiPropertyOptional({ minimum: 1, maximum: 604800, description: 'Seconds a holder has before the lease expires' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(604800)
  timeout_seconds?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 100 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  max_retries?: number;

  @ApiPropertyOptional({ format: 'date-time', description: 'Not before this time (delayed task)' })
  @IsOptional()
  @IsISO8601({ strict: true })
  run_at?: string;

  @ApiPropertyOptional({ description: 'Only this node/device (or pull worker with this id) may take it' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  target_node_id?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: '`metadata.concurrency_key` names a concurrency key where the body cannot (seed surfaces)',
  })
  @IsOptional()
  @IsPlainObject()
  @MetadataConcurrencyKey()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    example: 'cust-1',
    pattern: KEY_PATTERN.source,
    description: 'Tasks of one key obey its limits (PUT /api/v1/concurrency/{key}; docs/flow-control.md)',
  })
  @IsOptional()
  @Matches(KEY_PATTERN, { message: `concurrency_key must be ${KEY_RULE}` })
  concurrency_key?: string;

  @ApiPropertyOptional({
    description: 'Same key → the first task is returned (also accepted as Idempotency-Key header)',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  idempotency_key?: string;

  @ApiPropertyOptional({
    example: 'file-organizer',
    description:
      'A registered plugin: the task is never dispatched; it runs at once, held by plugin:<name>, until the plugin calls back',
  })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  awaits_callback?: string;
}

export class BatchCreateTasksDto {
  @ApiProperty({ type: [CreateTaskDto], maxItems: 1000, description: 'Validated one by one; answers per item' })
  @IsArray()
  @ArrayMaxSize(1000)
  tasks: unknown[];
}
