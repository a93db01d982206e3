import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class SettingKeyParam {
  @ApiProperty({ example: 'LOG_LEVEL' })
  @IsString()
  @Length(1, 100)
  key: string;
}

export class SettingView {
  @ApiProperty({ example: 'RATE_LIMIT_MAX' }) key: string;
  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }],
    nullable: true,
    description: 'Effective value; credentials masked (postgres://u:****@h/db)',
  })
  value: string | number | boolean | null;
  @ApiProperty({ enum: ['default', 'env', 'file', 'runtime'] }) source: string;
  @ApiProperty({ description: 'Changes with PATCH /v1/config without a restart' }) hot: boolean;
  @ApiPropertyOptional() description?: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'source runtime only' }) updated_at?: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Name of the key that set it (source runtime only)',
  })
  updated_by?: string | null;
}

export class SettingListView {
  @ApiProperty({ type: [SettingView] }) settings: SettingView[];
}
