import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { PaginationView } from '../../tasks/dto/task.view.js';
import { PLUGIN_NAME_PATTERN } from '../plugin.types.js';

const NAME_RULE = 'name must match ^[a-z0-9][a-z0-9_.-]{0,63}$';

export class CreatePluginDto {
  @ApiProperty({ example: 'file-organizer', pattern: PLUGIN_NAME_PATTERN.source })
  @IsString()
  @Matches(PLUGIN_NAME_PATTERN, { message: NAME_RULE })
  name: string;
}

export class PluginNameParam {
  @ApiProperty({ pattern: PLUGIN_NAME_PATTERN.source })
  @IsString()
  @Matches(PLUGIN_NAME_PATTERN, { message: NAME_RULE })
  name: string;
}

export class PluginView {
  @ApiProperty() name: string;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) rotated_at: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'The previous secret and token work until then',
  })
  previous_valid_until: string | null;
}

export class IssuedPluginView {
  @ApiProperty() name: string;
  @ApiProperty({ example: 'whsec_…', description: 'Standard Webhooks signing secret. Shown once.' }) secret: string;
  @ApiProperty({ description: 'Bearer token for callbacks (alternative to signing). Shown once; stored hashed.' })
  token: string;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) previous_valid_until: string | null;
}

export class PluginListView {
  @ApiProperty({ type: [PluginView] }) plugins: PluginView[];
  @ApiProperty({ type: PaginationView }) pagination: PaginationView;
}
