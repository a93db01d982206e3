import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { KEY_PATTERN, KEY_RULE } from '../concurrency-window.js';

/** `:key` path parameter: a bad key is a 400 naming `key`, never a lookup. */
export class ConcurrencyKeyParam {
  @ApiProperty({ example: 'cust-1', pattern: KEY_PATTERN.source })
  @Matches(KEY_PATTERN, { message: `key must be ${KEY_RULE}` })
  key: string;
}

/** Body of PUT: at least one limit (checked by the service, which names `max_running`). */
export class PutConcurrencyLimitDto {
  @ApiPropertyOptional({
    minimum: 1,
    maximum: 1_000_000,
    description: 'Tasks of the key out at once (dispatched or running)',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  max_running?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1_000_000, description: 'Starts of the key in any rolling 60 s' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  max_per_minute?: number;
}

export class ListConcurrencyLimitsQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: 'The page starts after this key (the last key of the previous page)' })
  @IsOptional()
  @Matches(KEY_PATTERN, { message: `after must be ${KEY_RULE}` })
  after?: string;
}

export class ConcurrencyLimitView {
  @ApiProperty({ example: 'cust-1' }) key: string;
  @ApiProperty({ type: Number, nullable: true }) max_running: number | null;
  @ApiProperty({ type: Number, nullable: true }) max_per_minute: number | null;
  @ApiProperty({ description: 'Tasks of the key dispatched or running now' }) running: number;
  @ApiProperty({ description: 'Tasks of the key started in the last rolling minute' }) started_last_minute: number;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class ConcurrencyLimitListView {
  @ApiProperty({ type: [ConcurrencyLimitView] }) limits: ConcurrencyLimitView[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `after` for the next page; null on the last' })
  next_after: string | null;
}
