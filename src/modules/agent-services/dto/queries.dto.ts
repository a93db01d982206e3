import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { LOG_LEVELS, type LogLevel } from '../service-logs.store.js';
import { TIMESERIES_METRICS, type TimeseriesMetric } from '../stats.repository.js';

const SERVICE_REF = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const DURATION = /^\d{1,6}[smhd]$/;

export class HistoryQuery {
  @ApiPropertyOptional({ default: 50, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class ServiceLogsQuery {
  @ApiPropertyOptional({ enum: LOG_LEVELS, description: 'this level and above' })
  @IsOptional()
  @IsIn(LOG_LEVELS)
  level?: LogLevel;

  @ApiPropertyOptional({ default: 100, maximum: 5000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(5000)
  limit?: number;

  @ApiPropertyOptional({ example: '2024-01-01T10:00:00Z' })
  @IsOptional()
  @IsISO8601()
  since?: string;

  @ApiPropertyOptional({ description: 'only entries after this sequence number (for --follow)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after_seq?: number;
}

export class LogSearchQuery {
  @ApiProperty({ example: 'error' })
  @IsString()
  @Length(1, 200)
  query: string;

  @ApiPropertyOptional({ description: 'service id or name' })
  @IsOptional()
  @Matches(SERVICE_REF, { message: 'service_id must be a service id or name' })
  service_id?: string;

  @ApiPropertyOptional({ default: 50, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class ListConnectionsQuery {
  @ApiPropertyOptional({ description: 'service id or name' })
  @IsOptional()
  @Matches(SERVICE_REF, { message: 'service_id must be a service id or name' })
  service_id?: string;

  @ApiPropertyOptional({ enum: ['active', 'closed'] })
  @IsOptional()
  @IsIn(['active', 'closed'])
  status?: 'active' | 'closed';

  @ApiPropertyOptional({ default: 50, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class ConnectionIdParam {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a connection id (UUID)' })
  id: string;
}

export class DisconnectDto {
  @ApiPropertyOptional({ default: 'Administrative disconnect' })
  @IsOptional()
  @IsString()
  @Length(1, 500)
  reason?: string;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  notify_client?: boolean;
}

export class TimeseriesQuery {
  @ApiProperty({ enum: TIMESERIES_METRICS })
  @IsIn(TIMESERIES_METRICS)
  metric: TimeseriesMetric;

  @ApiPropertyOptional({ default: '1h', example: '1h', description: '<n>s|m|h|d, at most 7d' })
  @IsOptional()
  @Matches(DURATION, { message: 'period must look like 30m, 1h or 7d' })
  period?: string;

  @ApiPropertyOptional({ default: '5m', example: '5m' })
  @IsOptional()
  @Matches(DURATION, { message: 'interval must look like 10s, 5m or 1h' })
  interval?: string;

  @ApiPropertyOptional({ description: 'service id or name; omitted: the whole hub' })
  @IsOptional()
  @Matches(SERVICE_REF, { message: 'service_id must be a service id or name' })
  service_id?: string;
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds in `30s`, `5m`, `1h`, `7d`. */
export function durationSeconds(d: string): number {
  return Number(d.slice(0, -1)) * UNIT_S[d.slice(-1)];
}
