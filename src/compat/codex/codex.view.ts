import { applyDecorators, type Type } from '@nestjs/common';
import { ApiExtraModels, ApiProperty, ApiPropertyOptional, ApiResponse, getSchemaPath } from '@nestjs/swagger';

/** Seed 000 (Codex Father) response shapes: camelCase, in `{success, data, message?, timestamp, requestId}`. */

const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
const nullableDate = { type: String, format: 'date-time', nullable: true } as const;
const json = { type: 'object', additionalProperties: true, nullable: true } as const;

export class CodexSubmittedView {
  @ApiProperty({ format: 'uuid' }) taskId: string;
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty({ enum: PRIORITIES }) priority: string;
  @ApiPropertyOptional({ description: 'ms: recent mean run time of this type (absent without history)' })
  estimatedDuration?: number;
}

export class CodexListItemView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty() progress: number;
  @ApiProperty({ enum: PRIORITIES }) priority: string;
  @ApiProperty(nullableDate) startTime: string | null;
  @ApiProperty(nullableDate) createdAt: string | null;
}

export class CodexPaginationView {
  @ApiProperty() page: number;
  @ApiProperty() limit: number;
  @ApiProperty() total: number;
  @ApiProperty() hasMore: boolean;
}

export class CodexTaskListView {
  @ApiProperty({ type: [CodexListItemView] }) tasks: CodexListItemView[];
  @ApiProperty({ type: CodexPaginationView }) pagination: CodexPaginationView;
}

export class CodexTaskStatusView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty() progress: number;
  @ApiProperty(nullableDate) startTime: string | null;
  @ApiProperty({ type: Number, nullable: true, description: 'ms' }) duration: number | null;
  @ApiProperty(json) result: unknown;
  @ApiProperty(json) error: unknown;
  @ApiProperty({ enum: PRIORITIES }) priority: string;
  @ApiProperty({ type: String, nullable: true }) environment: string | null;
  @ApiProperty({ type: String, nullable: true }) prompt: string | null;
  @ApiProperty(nullableDate) createdAt: string | null;
  @ApiProperty(nullableDate) completedAt: string | null;
}

export class CodexRepliedView {
  @ApiProperty({ format: 'uuid' }) taskId: string;
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty({ description: 'messages in the conversation' }) messages: number;
}

export class CodexCancelledView {
  @ApiProperty({ format: 'uuid' }) taskId: string;
  @ApiProperty({ enum: STATUSES }) status: string;
}

export class CodexLogView {
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() level: string;
  @ApiProperty() type: string;
  @ApiProperty() message: string;
  @ApiProperty() attempt: number;
}

export class CodexLogsView {
  @ApiProperty() taskId: string;
  @ApiProperty({ type: [CodexLogView] }) logs: CodexLogView[];
}

/** Documents a seed 000 success body around `model` (or a free-form `data`). */
export function ApiCodexOk(model: Type<unknown> | null, status = 200) {
  return applyDecorators(
    ...(model ? [ApiExtraModels(model)] : []),
    ApiResponse({
      status,
      description: 'OK (seed 000 shape)',
      schema: {
        type: 'object',
        required: ['success', 'data', 'timestamp', 'requestId'],
        properties: {
          success: { type: 'boolean', enum: [true] },
          data: model ? { $ref: getSchemaPath(model) } : { type: 'object', additionalProperties: true },
          message: { type: 'string' },
          timestamp: { type: 'string', format: 'date-time' },
          requestId: { type: 'string' },
        },
      },
    }),
  );
}
