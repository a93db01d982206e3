import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsArray, IsOptional, IsString, Matches } from 'class-validator';
import { PaginationView } from '../../tasks/dto/task.view.js';
import { PLUGIN_NAME_PATTERN } from '../plugin.types.js';

const NAME_RULE = `name must match ${PLUGIN_NAME_PATTERN.source}`;

/** A tool as stored and shown (the input may also be `{type: "function", function: {…}}`). */
export class PluginToolView {
  @ApiProperty({ pattern: '^[a-zA-Z0-9_-]{1,64}$', example: 'organize_files' }) name: string;
  @ApiProperty({ type: String, nullable: true }) description: string | null;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'JSON Schema of the arguments, with type "object"',
  })
  parameters: Record<string, unknown> | null;
}

const TOOLS_DESCRIPTION =
  'OpenAI function definitions, each {name, description?, parameters?} or {type: "function", function: {name, description?, parameters?}}; ' +
  'name matches ^[a-zA-Z0-9_-]{1,64}$ and is unique in the plugin, parameters is a JSON Schema with type "object", at most 128 tools. ' +
  'A bad one is a 400 naming its field, e.g. tools[2].name.';

export class CreatePluginDto {
  @ApiProperty({
    example: 'FileOrganizer',
    pattern: PLUGIN_NAME_PATTERN.source,
    description: 'Kept as written; unique and matched case-insensitively',
  })
  @IsString()
  @Matches(PLUGIN_NAME_PATTERN, { message: NAME_RULE })
  name: string;

  @ApiPropertyOptional({ type: [PluginToolView], description: TOOLS_DESCRIPTION })
  @IsOptional()
  @IsArray()
  tools?: unknown[];
}

export class UpdatePluginDto {
  @ApiProperty({ type: [PluginToolView], description: `Replaces the plugin's tools. ${TOOLS_DESCRIPTION}` })
  @IsArray()
  tools: unknown[];
}

export class PluginNameParam {
  @ApiProperty({ pattern: PLUGIN_NAME_PATTERN.source })
  @IsString()
  @Matches(PLUGIN_NAME_PATTERN, { message: NAME_RULE })
  name: string;
}

export class PluginView {
  @ApiProperty() name: string;
  @ApiProperty({ type: [PluginToolView] }) tools: PluginToolView[];
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
  @ApiProperty({ type: [PluginToolView] }) tools: PluginToolView[];
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
