import { applyDecorators, type Type } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';

/** Documents a response as the envelope `{success, data: <model>, error, timestamp, request_id}`. */
export function ApiEnvelope(
  model: Type<unknown> | null,
  options: { status?: number; description?: string; nullable?: boolean } = {},
) {
  const data = model
    ? { allOf: [{ $ref: getSchemaPath(model) }], nullable: options.nullable ?? false }
    : { type: 'object', nullable: true };
  return applyDecorators(
    ...(model ? [ApiExtraModels(model)] : []),
    ApiResponse({
      status: options.status ?? 200,
      description: options.description ?? 'OK',
      schema: {
        type: 'object',
        properties: {
          success: { type: 'boolean', example: true },
          data,
          error: { type: 'object', nullable: true, example: null },
          timestamp: { type: 'string', format: 'date-time' },
          request_id: { type: 'string' },
        },
      },
    }),
  );
}
