import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsPositive,
  IsString,
  Length,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { IsPlainObject } from '../../../common/validators.js';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { FAILURE_TYPES, ROLLOUT_STATUSES, type FailureType, type RolloutStatus } from '../rollout.types.js';

/** The most releases a minute a rollout may ask for (100 a second). */
export const MAX_PER_MINUTE = 6000;

export class RolloutTaskDto {
  @ApiProperty({ example: 'firmware-update' })
  @IsString()
  @Length(1, 100)
  type: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsPlainObject()
  data?: Record<string, unknown>;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 100_000)
  prompt?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 604800 })
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
}

export class RolloutTargetDto {
  @ApiPropertyOptional({ type: [String], example: ['fleet'], description: 'Nodes that have every one of these tags' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @Length(1, 100, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ type: [String], description: 'These nodes (each must exist)' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10_000)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  node_ids?: string[];
}

export class ExponentialRateDto {
  @ApiProperty({ minimum: 1, description: 'Releases a minute at the start (IoT Jobs baseRatePerMinute)' })
  @IsInt()
  @Min(1)
  @Max(MAX_PER_MINUTE)
  base_per_minute: number;

  @ApiProperty({ minimum: 1.1, maximum: 5, description: 'Multiplies the rate (IoT Jobs incrementFactor)' })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1.1)
  @Max(5)
  factor: number;

  @ApiProperty({
    minimum: 1,
    description: 'The rate grows each time this many more executions succeeded (numberOfSucceededThings)',
  })
  @IsInt()
  @Min(1)
  after_succeeded: number;
}

export class RolloutRateDto {
  @ApiProperty({
    minimum: 1,
    maximum: MAX_PER_MINUTE,
    description: 'Most releases a minute (IoT Jobs maximumPerMinute)',
  })
  @IsInt()
  @Min(1)
  @Max(MAX_PER_MINUTE)
  per_minute: number;

  @ApiPropertyOptional({ type: ExponentialRateDto })
  @IsOptional()
  @IsPlainObject()
  @ValidateNested()
  @Type(() => ExponentialRateDto)
  exponential?: ExponentialRateDto;
}

export class AbortRuleDto {
  @ApiProperty({ enum: FAILURE_TYPES })
  @IsIn(FAILURE_TYPES)
  failure_type: FailureType;

  @ApiProperty({ minimum: 0, exclusiveMinimum: true, maximum: 100 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @IsPositive()
  @Max(100)
  threshold_percent: number;

  @ApiProperty({ minimum: 1, description: 'Finished executions before the rule applies' })
  @IsInt()
  @Min(1)
  min_executed: number;
}

export class CreateRolloutDto {
  @ApiProperty({ example: 'firmware 2.1 to the fleet' })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiProperty({ type: RolloutTaskDto })
  @IsPlainObject()
  @ValidateNested()
  @Type(() => RolloutTaskDto)
  task: RolloutTaskDto;

  @ApiProperty({ type: RolloutTargetDto })
  @IsPlainObject()
  @ValidateNested()
  @Type(() => RolloutTargetDto)
  target: RolloutTargetDto;

  @ApiPropertyOptional({ type: RolloutRateDto, description: 'Absent: 1000 a minute (IoT Jobs default)' })
  @IsOptional()
  @IsPlainObject()
  @ValidateNested()
  @Type(() => RolloutRateDto)
  rate?: RolloutRateDto;

  @ApiPropertyOptional({ type: [AbortRuleDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10)
  @ValidateNested({ each: true })
  @Type(() => AbortRuleDto)
  abort?: AbortRuleDto[];

  @ApiPropertyOptional({ default: false, description: 'Nodes that come online later with the target tags join' })
  @IsOptional()
  @IsBoolean()
  include_future_nodes?: boolean;
}

export class ListRolloutsQuery extends PageQuery {}

export class RolloutCountsView {
  @ApiProperty({ description: 'Not released yet' }) queued: number;
  @ApiProperty() pending: number;
  @ApiProperty() dispatched: number;
  @ApiProperty() running: number;
  @ApiProperty() completed: number;
  @ApiProperty() failed: number;
  @ApiProperty() timed_out: number;
  @ApiProperty() cancelled: number;
  @ApiProperty({ description: 'The task could not be created (a tenant limit)' }) rejected: number;
}

export class RolloutNodeView {
  @ApiProperty() node_id: string;
  @ApiProperty({
    description: 'queued (not released), the task state, rejected, or cancelled (never released: the rollout ended)',
  })
  status: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) task_id: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) released_at: string | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
}

export class RolloutView {
  @ApiProperty({ format: 'uuid' }) rollout_id: string;
  @ApiProperty({ format: 'uuid', description: 'Same as rollout_id' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLLOUT_STATUSES }) status: RolloutStatus;
  @ApiProperty({ type: RolloutTaskDto }) task: RolloutTaskDto;
  @ApiProperty({ type: RolloutTargetDto }) target: RolloutTargetDto;
  @ApiProperty({ type: RolloutRateDto, nullable: true }) rate: RolloutRateDto | null;
  @ApiProperty({ type: [AbortRuleDto] }) abort: AbortRuleDto[];
  @ApiProperty() include_future_nodes: boolean;
  @ApiProperty({ description: 'Targeted nodes' }) total: number;
  @ApiProperty({ description: 'Nodes whose task went out' }) released: number;
  @ApiProperty({ description: 'Releases a minute now (grows with exponential)' }) current_per_minute: number;
  @ApiProperty({ type: RolloutCountsView }) counts: RolloutCountsView;
  @ApiProperty({ type: String, nullable: true, description: 'Why it was aborted or cancelled' })
  reason: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finished_at: string | null;
  @ApiPropertyOptional({ type: [RolloutNodeView], description: 'One: every targeted node (up to 10,000)' })
  nodes?: RolloutNodeView[];
}

export class RolloutPaginationView {
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
  @ApiProperty() has_more: boolean;
}

export class RolloutListView {
  @ApiProperty({ type: [RolloutView] }) rollouts: RolloutView[];
  @ApiProperty({ type: RolloutPaginationView }) pagination: RolloutPaginationView;
}

export class CancelRolloutDto {
  @ApiPropertyOptional({ example: 'wrong firmware' })
  @IsOptional()
  @IsString()
  @Length(1, 500)
  reason?: string;
}
