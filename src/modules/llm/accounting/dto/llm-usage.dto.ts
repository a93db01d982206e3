import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, IsUUID, Length } from 'class-validator';
import type { UsageInterval } from '../llm-usage.repository.js';

export const USAGE_INTERVALS: readonly UsageInterval[] = ['minute', 'hour', 'day'];

export class LlmUsageQuery {
  @ApiPropertyOptional({ format: 'uuid', description: 'One key (a non-admin key always sees only its own)' })
  @IsOptional()
  @IsUUID('all', { message: 'key_id must be a UUID' })
  key_id?: string;

  @ApiPropertyOptional({ description: 'Served or requested model' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  model?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'From (inclusive); default: 24 h before until' })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'To (exclusive); default: now' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;

  @ApiPropertyOptional({ enum: USAGE_INTERVALS, default: 'minute' })
  @IsOptional()
  @IsIn(USAGE_INTERVALS)
  interval?: UsageInterval;
}

export class LlmUsageBucketView {
  @ApiProperty({ format: 'date-time', description: 'Start of the bucket (UTC)' }) bucket: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) key_id: string | null;
  @ApiProperty({ description: 'Model the deployment served' }) model: string;
  @ApiProperty() calls: number;
  @ApiProperty({ description: 'Failed or timed-out calls' }) errors: number;
  @ApiProperty() prompt_tokens: number;
  @ApiProperty() completion_tokens: number;
  @ApiProperty({ type: Number, nullable: true }) avg_ttft_ms: number | null;
  @ApiProperty() avg_duration_ms: number;
  @ApiProperty() p50_duration_ms: number;
}

export class LlmUsageTotalsView {
  @ApiProperty() calls: number;
  @ApiProperty() errors: number;
  @ApiProperty() prompt_tokens: number;
  @ApiProperty() completion_tokens: number;
}

export class LlmUsageView {
  @ApiProperty({ enum: USAGE_INTERVALS }) interval: UsageInterval;
  @ApiProperty({ format: 'date-time' }) since: string;
  @ApiProperty({ format: 'date-time' }) until: string;
  @ApiProperty({ type: [LlmUsageBucketView] }) rows: LlmUsageBucketView[];
  @ApiProperty({ type: LlmUsageTotalsView }) totals: LlmUsageTotalsView;
}
