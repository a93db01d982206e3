import { ApiProperty } from '@nestjs/swagger';

export class ToolNodeView {
  @ApiProperty() node_id: string;
  @ApiProperty({ type: String, nullable: true }) name: string | null;
}

export class ToolView {
  @ApiProperty({ enum: ['function'] }) type: 'function';
  @ApiProperty({
    type: 'object',
    description: 'OpenAI function definition: name, description, parameters (JSON Schema)',
    additionalProperties: true,
  })
  function: Record<string, unknown>;
  @ApiProperty({ type: String, nullable: true, description: 'The plugin that declared it (its callback path is used)' })
  plugin: string | null;
  @ApiProperty({
    type: [ToolNodeView],
    description: 'Connected nodes that run it (none: calls fail until one connects)',
  })
  nodes: ToolNodeView[];
}

export class ToolListView {
  @ApiProperty({ enum: ['list'] }) object: 'list';
  @ApiProperty({ type: [ToolView] }) data: ToolView[];
}
