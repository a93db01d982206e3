import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';

/** `:id` of a service: its UUID or its name (the CLI passes names). */
export class ServiceRefParam {
  @ApiProperty({ description: 'service id (UUID) or name', example: 'weather-agent' })
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { message: 'id must be a service id or name' })
  id: string;
}
