import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import { API_KEY_ROLES, BUDGET_DURATIONS, type ApiKeyRole, type BudgetDuration } from '../api-key.types.js';

const MAX_LIMIT = 2_147_483_647;

/** '1h' | '1d' | '7d' | '30d', or a whole number of seconds ≥ 1. */
function IsBudgetDuration(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isBudgetDuration',
      validator: {
        validate: (v: unknown) =>
          (typeof v === 'string' && Object.hasOwn(BUDGET_DURATIONS, v)) ||
          (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_LIMIT),
        defaultMessage: () =>
          `budget_duration must be one of ${Object.keys(BUDGET_DURATIONS).join(', ')} or a positive number of seconds`,
      },
    },
    options,
  );
}

/** LLM limits of a key; every field optional (null: none). docs/llm-accounting.md */
export class ApiKeyLimitsDto {
  @ApiPropertyOptional({ minimum: 1, description: 'LLM requests per minute', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_LIMIT)
  rpm?: number | null;

  @ApiPropertyOptional({ minimum: 1, description: 'LLM tokens (prompt + completion) per minute', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_LIMIT)
  tpm?: number | null;

  @ApiPropertyOptional({ minimum: 1, description: 'LLM calls in flight at once', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_LIMIT)
  max_parallel?: number | null;

  @ApiPropertyOptional({ minimum: 1, description: 'Tokens per budget_duration (or ever, without one)', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  budget_tokens?: number | null;

  @ApiPropertyOptional({
    oneOf: [
      { type: 'string', enum: Object.keys(BUDGET_DURATIONS) },
      { type: 'integer', minimum: 1 },
    ],
    example: '1d',
    nullable: true,
  })
  @IsOptional()
  @IsBudgetDuration()
  budget_duration?: BudgetDuration | null;

  @ApiPropertyOptional({
    type: [String],
    maxItems: 100,
    description: 'Models (or aliases) the key may call; absent: all',
    nullable: true,
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  models?: string[] | null;
}

export class CreateApiKeyDto {
  @ApiProperty({ example: 'ci-worker' })
  @IsString()
  @Length(1, 100)
  name: string;

  /** One role; or give `roles`. */
  @ApiPropertyOptional({ enum: API_KEY_ROLES, example: 'worker', description: 'One role (or give roles)' })
  @ValidateIf((o: CreateApiKeyDto) => o.roles === undefined || o.role !== undefined)
  @IsIn(API_KEY_ROLES, { message: `role must be one of ${API_KEY_ROLES.join(', ')} (or give roles)` })
  role?: ApiKeyRole;

  /** Several roles, e.g. ["client", "worker"] for a client that creates, pulls and completes (seed 002). */
  @ApiPropertyOptional({ type: [String], enum: API_KEY_ROLES, example: ['client', 'worker'] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(3)
  @ArrayUnique()
  @IsIn(API_KEY_ROLES, { each: true, message: `roles must be some of ${API_KEY_ROLES.join(', ')}` })
  roles?: ApiKeyRole[];

  @ApiPropertyOptional({ type: ApiKeyLimitsDto, nullable: true, description: 'LLM limits; absent or null: unlimited' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ApiKeyLimitsDto)
  limits?: ApiKeyLimitsDto | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    example: 'family-a',
    description: "The key's tenant; absent: the caller's; null: a global key (global admins only, admin role)",
  })
  @IsOptional()
  @IsString()
  @Length(1, 63)
  tenant_id?: string | null;
}

export class ApiKeyView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: API_KEY_ROLES, description: 'The first of roles' }) role: ApiKeyRole;
  @ApiProperty({ type: [String], enum: API_KEY_ROLES }) roles: ApiKeyRole[];
  @ApiProperty({ description: 'First characters of the key, to tell keys apart' }) prefix: string;
  @ApiProperty() created_at: string;
  @ApiProperty({ nullable: true, type: String }) last_used_at: string | null;
  @ApiProperty({ nullable: true, type: String }) revoked_at: string | null;
  @ApiProperty({ nullable: true, type: ApiKeyLimitsDto, description: 'LLM limits; null: unlimited' })
  limits: ApiKeyLimitsDto | null;
  @ApiProperty({ nullable: true, type: String, description: 'null: a global key' }) tenant_id: string | null;
}

export class CreatedApiKeyView extends ApiKeyView {
  @ApiProperty({ description: 'The key itself. Shown once; only its hash is stored.' })
  key: string;
}
