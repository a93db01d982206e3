import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { IsPlainObject } from '../../../common/validators.js';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { OPERATORS, STRATEGIES, type Strategy } from '../rule-engine.js';

export class RuleConditionView {
  @ApiProperty({
    example: 'header.x-user-tier',
    description: 'header.<name>, query.<name>, client_ip, task.<field>[.<sub>]',
  })
  field: string;
  @ApiProperty({ enum: OPERATORS }) operator: string;
  @ApiProperty({
    example: 'vip',
    description: 'string/number/boolean; an array for `in`; a boolean for `exists`; a pattern for `regex`',
    oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'array', items: {} }],
  })
  value: unknown;
}

export class CreateRoutingRuleDto {
  @ApiProperty({ example: 'vip-routing' })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiPropertyOptional({ nullable: true, type: String })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  description?: string | null;

  @ApiPropertyOptional({ default: 0, description: 'Higher wins' })
  @IsOptional()
  @IsInt()
  @Min(-1_000_000)
  @Max(1_000_000)
  priority?: number;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @ApiProperty({ type: [RuleConditionView], description: 'All must match; none = matches everything' })
  @IsArray()
  conditions: unknown[];

  @ApiPropertyOptional({ enum: STRATEGIES, default: 'least_connections' })
  @IsOptional()
  @IsIn(STRATEGIES)
  target_strategy?: Strategy;

  @ApiPropertyOptional({ type: [String], example: ['high-performance'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Length(1, 64, { each: true })
  target_tags?: string[];

  @ApiPropertyOptional({ nullable: true, type: String })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  target_service?: string | null;
}

export class UpdateRoutingRuleDto extends PartialType(CreateRoutingRuleDto) {}

export class ListRoutingRulesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: ['true', 'false'] })
  @IsOptional()
  @IsIn(['true', 'false'])
  enabled?: 'true' | 'false';
}

export class EvaluateRoutingDto {
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { 'x-user-tier': 'vip' } })
  @IsOptional()
  @IsPlainObject()
  headers?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { session_id: 's-1' } })
  @IsOptional()
  @IsPlainObject()
  query?: Record<string, unknown>;

  @ApiPropertyOptional({ example: '10.0.0.7' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  client_ip?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { priority: 'high', tags: ['gpu'] } })
  @IsOptional()
  @IsPlainObject()
  task?: Record<string, unknown>;
}

export class RoutingRuleView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ nullable: true, type: String }) description: string | null;
  @ApiProperty() priority: number;
  @ApiProperty() enabled: boolean;
  @ApiProperty({ type: [RuleConditionView] }) conditions: RuleConditionView[];
  @ApiProperty({ enum: STRATEGIES }) target_strategy: string;
  @ApiProperty({ type: [String] }) target_tags: string[];
  @ApiProperty({ nullable: true, type: String }) target_service: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class RoutingRuleListView {
  @ApiProperty({ type: [RoutingRuleView], description: 'Highest priority first' }) rules: RoutingRuleView[];
  @ApiProperty({ example: { total: 1, limit: 50, offset: 0, has_more: false } })
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}

export class EvaluateRoutingView {
  @ApiProperty({ type: RoutingRuleView, nullable: true, description: 'The rule that wins, or null (default strategy)' })
  rule: RoutingRuleView | null;
}
