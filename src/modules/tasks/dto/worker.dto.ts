import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsBoolean,
  IsDefined,
  IsObject,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { IsAbsolutePath, IsPlainObject } from '../../../common/validators.js';

export class NextTaskQuery {
  @ApiProperty({ example: 'worker-001' })
  @IsString()
  @Length(1, 200)
  worker_id: string;

  @ApiPropertyOptional({
    example: '/home/user/projects/my-project',
    description: 'Only tasks whose work_directory is here or below',
  })
  @IsOptional()
  @IsString()
  @IsAbsolutePath({ message: 'work_path must be an absolute path' })
  @MaxLength(4096)
  work_path?: string;

  @ApiPropertyOptional({
    type: String,
    example: 'gpu,linux',
    description:
      "Comma list of the worker's tags: only tasks whose required_tags are all among them (unset: any task, as before)",
  })
  @IsOptional()
  @Transform(commaList)
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @Length(1, 100, { each: true })
  tags?: string[];

  @ApiPropertyOptional({
    type: String,
    example: 'prompt,DELIST',
    description: 'Comma list of the task types this worker runs (unset: any type)',
  })
  @IsOptional()
  @Transform(commaList)
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  types?: string[];
}

/** `a,b` → ['a', 'b'] (a query string's comma list; '' → []). */
function commaList({ value }: { value: unknown }): unknown {
  if (typeof value !== 'string') return value;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Identifies the holder of a task; when given, a report from anyone else is rejected (STALE_ATTEMPT). */
export class HolderDto {
  @ApiPropertyOptional({ example: 'worker-001' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  worker_id?: string;

  @ApiPropertyOptional({ description: 'The attempt number handed out with the task (fencing token)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  attempt?: number;
}

export class AcquireTaskDto {
  @ApiProperty({ example: 'worker-001' })
  @IsString()
  @Length(1, 200)
  worker_id: string;
}

export class ProgressDto extends HolderDto {
  @ApiProperty({ minimum: 0, maximum: 100 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(100)
  progress: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  message?: string;
}

export class HeartbeatDto extends HolderDto {
  @ApiPropertyOptional({ minimum: 0, maximum: 100 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(100)
  progress?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  message?: string;
}

export class TaskResultDto {
  @ApiProperty({ example: 'success', description: '`success` completes the task; anything else fails this attempt' })
  @IsString()
  @Length(1, 50)
  status: string;

  @ApiPropertyOptional({ example: 'Analysis completed successfully' })
  @IsOptional()
  @IsString()
  @MaxLength(500_000)
  output?: string;

  @ApiPropertyOptional({ example: 3000, description: 'Milliseconds' })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  duration?: number;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsPlainObject()
  details?: Record<string, unknown>;
}

export class CompleteTaskDto extends HolderDto {
  @ApiPropertyOptional({ description: 'The prompt the worker ran (seed 002); kept in the result' })
  @IsOptional()
  @IsString()
  @MaxLength(200_000)
  original_prompt?: string;

  @ApiProperty({ type: TaskResultDto })
  @IsDefined({ message: 'result is required' })
  @IsObject()
  @ValidateNested()
  @Type(() => TaskResultDto)
  result: TaskResultDto;
}

export class FailTaskDto extends HolderDto {
  @ApiProperty({ example: 'Compiler crashed' })
  @IsString()
  @Length(1, 10_000)
  error: string;

  @ApiPropertyOptional({ default: true, description: 'false fails the task for good, skipping retries' })
  @IsOptional()
  @IsBoolean()
  retryable?: boolean;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsPlainObject()
  details?: Record<string, unknown>;
}

export class CancelTaskDto {
  @ApiPropertyOptional({ example: 'Project cancelled by client' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  reason?: string;
}

export class RetryTaskDto {
  @ApiPropertyOptional({ default: false, description: 'Retry even past max_retries' })
  @IsOptional()
  @IsBoolean()
  force?: boolean;
}

export class ReplyTaskDto {
  @ApiProperty({ example: 'Please also check the auth module' })
  @IsString()
  @Length(1, 200_000)
  message: string;
}
