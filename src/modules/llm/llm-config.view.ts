import { ApiProperty } from '@nestjs/swagger';

/** `/v1/config/llm`: the gateway's providers (keys masked), aliases, fallbacks and default model. */
export class LlmConfigDocument {
  @ApiProperty({
    type: 'array',
    items: { type: 'object', additionalProperties: true, description: 'a provider; api_key masked' },
  })
  providers: Record<string, unknown>[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) aliases: Record<string, string>;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } })
  fallbacks: Record<string, string[]>;
  @ApiProperty({ type: String, nullable: true }) default_model: string | null;
}
