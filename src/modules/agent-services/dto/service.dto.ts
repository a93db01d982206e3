import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { IsPlainObject } from '../../../common/validators.js';
import { PageQuery } from '../../tasks/dto/list-tasks.query.js';
import {
  HEALTH_CHECK_TYPES,
  type HealthCheckType,
  SERVICE_STATUSES,
  type ServiceStatus,
} from '../agent-service.types.js';

export class HealthCheckDto {
  @ApiPropertyOptional({ enum: HEALTH_CHECK_TYPES, default: 'tcp' })
  @IsOptional()
  @IsIn(HEALTH_CHECK_TYPES)
  type?: HealthCheckType;

  @ApiPropertyOptional({ default: '/', description: 'HTTP path (http) or WebSocket path (ws)' })
  @IsOptional()
  @IsString()
  @Matches(/^\/[^\s]{0,500}$/, { message: 'path must start with / and hold no spaces' })
  path?: string;

  @ApiPropertyOptional({ default: 10, description: 'seconds between checks' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3600)
  interval?: number;

  @ApiPropertyOptional({ default: 5, description: 'seconds before a check fails' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(300)
  timeout?: number;
}

export class ServiceConfigDto {
  @ApiPropertyOptional({ default: 100, description: 'concurrent proxied connections' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  max_sessions?: number;

  @ApiPropertyOptional({ default: 1800, description: 'idle seconds before the proxy closes a connection; 0 = never' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(7 * 24 * 3600)
  session_timeout?: number;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  auto_restart?: boolean;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  health_check_enabled?: boolean;

  @ApiPropertyOptional({ default: 5, description: 'crash restarts allowed within restart_window' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  max_restarts?: number;

  @ApiPropertyOptional({ default: 60, description: 'seconds' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  restart_window?: number;

  @ApiPropertyOptional({ default: 15, description: 'seconds a start waits for a passing health check' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(600)
  start_timeout?: number;

  @ApiPropertyOptional({
    default: true,
    description:
      'wrap client text frames as {proxy_metadata, original_message} (seed 003 §2.2); false relays them untouched',
  })
  @IsOptional()
  @IsBoolean()
  proxy_metadata?: boolean;
}

export class CreateServiceDto {
  @ApiProperty({ example: 'weather-agent' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
    message: 'name must be 1-100 letters, digits, dots, dashes or underscores',
  })
  name: string;

  @ApiPropertyOptional({ nullable: true, type: String })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  description?: string | null;

  @ApiPropertyOptional({
    example: './agents/weather_agent.py',
    description: 'script run by its interpreter (.py python3, .js node, .sh bash) or executable',
  })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  agent_factory_path?: string;

  @ApiPropertyOptional({
    example: 'node',
    description: 'executable of a managed service (instead of agent_factory_path)',
  })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  command?: string;

  @ApiPropertyOptional({ type: [String], description: '`{port}` and `{host}` are filled in' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @MaxLength(4000, { each: true })
  args?: string[];

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  cwd?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  @IsOptional()
  @IsPlainObject()
  env?: Record<string, string>;

  @ApiPropertyOptional({ default: '127.0.0.1' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9.:-]{1,253}$/, { message: 'host must be a host name or IP address' })
  host?: string;

  @ApiPropertyOptional({ default: 0, description: '0 = a free port at each start' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(65535)
  port?: number;

  @ApiPropertyOptional({ example: 'ws://10.0.0.5:9000', description: 'an external service the hub does not run' })
  @IsOptional()
  @IsString()
  @Matches(/^wss?:\/\/[^\s]{1,1000}$/, { message: 'endpoint must be a ws:// or wss:// URL' })
  endpoint?: string;

  @ApiPropertyOptional({ type: HealthCheckDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => HealthCheckDto)
  health_check?: HealthCheckDto;

  @ApiPropertyOptional({ type: [String], example: ['weather', 'information'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Length(1, 64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ type: ServiceConfigDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => ServiceConfigDto)
  config?: ServiceConfigDto;

  @ApiPropertyOptional({ default: 1, description: 'share for the weighted strategy' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  weight?: number;
}

/** `PUT /services/:id/config`: config fields at the top level (as the seed sends them), plus a few registry fields. */
export class UpdateServiceConfigDto extends ServiceConfigDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  weight?: number;

  @ApiPropertyOptional({ type: [String] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Length(1, 64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ nullable: true, type: String })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  description?: string | null;

  @ApiPropertyOptional({ type: HealthCheckDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => HealthCheckDto)
  health_check?: HealthCheckDto;
}

export class ListServicesQuery extends PageQuery {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 64)
  tag?: string;

  @ApiPropertyOptional({ enum: SERVICE_STATUSES })
  @IsOptional()
  @IsIn(SERVICE_STATUSES)
  status?: ServiceStatus;
}

export class NotifyServiceDto {
  @ApiPropertyOptional({ default: 'announcement', example: 'maintenance_window' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  type?: string;

  @ApiProperty({ example: 'Service will be restarted in 5 minutes' })
  @IsString()
  @Length(1, 2000)
  message: string;

  @ApiPropertyOptional({ enum: ['info', 'warning', 'critical'], default: 'info' })
  @IsOptional()
  @IsIn(['info', 'warning', 'critical'])
  severity?: string;

  @ApiPropertyOptional({ example: 300 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(7 * 24 * 3600)
  countdown_seconds?: number;
}
