import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import { parseDuration } from '../../../common/duration.js';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import { PaginationView } from '../../tasks/dto/task.view.js';

const MAX_INT = 2_147_483_647;

/** The tenant's own retention of finished tasks (docs/retention.md); absent fields follow the hub's settings. */
export class TenantRetentionDto {
  @ApiPropertyOptional({
    example: '3d',
    description:
      'Finished tasks are removed this long after they finished: 90s, 30m, 12h, 3d, 2w or seconds; 0 or off: never by age',
  })
  @IsOptional()
  @IsString()
  @ValidateBy({
    name: 'isDuration',
    validator: {
      validate: (v: unknown) => parseDuration(v) !== undefined,
      defaultMessage: () => 'age must look like 90s, 30m, 12h, 3d or 2w (or 0/off)',
    },
  })
  age?: string;

  @ApiPropertyOptional({
    minimum: 0,
    description: 'Finished tasks kept at most (the oldest go first); 0: no count bound',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_INT)
  max_finished?: number;
}

/** Each limit is off when absent (docs/tenants.md, Limits). */
export class TenantLimitsDto {
  @ApiPropertyOptional({
    minimum: 1,
    description: "Requests per minute for all of the tenant's keys together (on top of each key's limit)",
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_INT)
  rate_limit_per_minute?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'LLM tokens the tenant may use in any rolling 30 days' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  llm_budget_tokens?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'Tasks the tenant may have pending, dispatched or running at once' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_INT)
  max_tasks?: number;

  @ApiPropertyOptional({
    minimum: 0.01,
    maximum: 1000,
    default: 1,
    description:
      'Its share of shared capacity (shared devices, global pull workers, the LLM gateway slots) against other tenants: 2 gets twice the share of 1 (docs/flow-control.md, Fairness)',
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.01)
  @Max(1000)
  weight?: number;

  @ApiPropertyOptional({
    type: TenantRetentionDto,
    description: 'Retention of finished tasks (absent: the hub settings)',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => TenantRetentionDto)
  retention?: TenantRetentionDto;
}

export class CreateTenantDto {
  @ApiPropertyOptional({ example: 'family-a', description: 'Lower case letters, digits, - and _; absent: a UUID' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
    message: 'id must be 1-63 of a-z, 0-9, - and _ (starting with a letter or digit)',
  })
  id?: string;

  @ApiProperty({ example: 'Family A' })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiPropertyOptional({ type: TenantLimitsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => TenantLimitsDto)
  limits?: TenantLimitsDto;
}

export class UpdateTenantDto {
  @ApiProperty({ type: TenantLimitsDto, description: 'Replaces the limits as a whole ({} lifts them all)' })
  @IsObject()
  @ValidateNested()
  @Type(() => TenantLimitsDto)
  limits: TenantLimitsDto;
}

export class TenantIdParam {
  @ApiProperty({ example: 'family-a' })
  @IsString()
  @Length(1, 63)
  id: string;
}

export class ListTenantsQuery extends PageQuery {}

export class TenantView {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: TenantLimitsDto }) limits: TenantLimitsDto;
  @ApiProperty() created_at: string;
}

export class TenantListView {
  @ApiProperty({ type: [TenantView] }) tenants: TenantView[];
  @ApiProperty({ type: PaginationView }) pagination: PaginationView;
}
