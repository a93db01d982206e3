import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** OpenAI's shapes on `/v1/models`, `/v1/chat/completions` and `/v1/interrupt` (no envelope). */

export class OpenAiModelView {
  @ApiProperty() id: string;
  @ApiProperty({ enum: ['model'] }) object: 'model';
  @ApiProperty({ description: 'unix seconds' }) created: number;
  @ApiProperty() owned_by: string;
}

export class OpenAiModelListView {
  @ApiProperty({ enum: ['list'] }) object: 'list';
  @ApiProperty({ type: [OpenAiModelView] }) data: OpenAiModelView[];
}

export class ChatUsageView {
  @ApiProperty() prompt_tokens: number;
  @ApiProperty() completion_tokens: number;
  @ApiProperty() total_tokens: number;
}

export class ChatCompletionView {
  @ApiProperty() id: string;
  @ApiProperty({ enum: ['chat.completion'] }) object: string;
  @ApiProperty() created: number;
  @ApiProperty() model: string;
  @ApiProperty({
    type: 'array',
    items: {
      type: 'object',
      properties: {
        index: { type: 'number' },
        message: {
          type: 'object',
          properties: { role: { type: 'string' }, content: { type: 'string', nullable: true } },
          additionalProperties: true,
        },
        finish_reason: { type: 'string', nullable: true },
      },
    },
  })
  choices: unknown[];
  @ApiPropertyOptional({ type: () => ChatUsageView }) usage?: ChatUsageView;
}

export class InterruptedView {
  @ApiProperty() request_id: string;
  @ApiProperty({ enum: [true] }) interrupted: true;
}
