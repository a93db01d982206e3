import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { IsPlainObject } from '../../common/validators.js';

export class DispatchTaskDto {
  @ApiProperty({ example: 'DELIST' })
  @IsString()
  @Length(1, 100)
  task_type: string;

  @ApiPropertyOptional({ example: { product_ids: ['123', '456', '789'] } })
  @IsOptional()
  @IsPlainObject()
  data?: Record<string, unknown>;

  @ApiPropertyOptional({ example: 'android_001', description: 'Only this device; otherwise the dispatcher picks' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  device_id?: string;
}

export class Seed004TaskIdParam {
  /** Any id: one that is not a task's UUID (the document's `task_001`) is simply not found. */
  @ApiProperty({ example: '6f1c…' })
  @IsString()
  @Length(1, 200)
  id: string;
}

export class Seed004ListQuery {
  @ApiPropertyOptional({ default: 100, maximum: 200 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'pending, dispatched, running, completed, failed, cancelled' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  status?: string;
}
