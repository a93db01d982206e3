import { applyDecorators, type Type } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';

interface EnvelopeOptions {
  status?: number;
  description?: string;
  nullable?: boolean;
  /** `data` is an array of the model. */
  isArray?: boolean;
}

const ENVELOPE_FIELDS = {
  success: { type: 'boolean', enum: [true] },
  error: { type: 'object', nullable: true, example: null },
  timestamp: { type: 'string', format: 'date-time' },
  request_id: { type: 'string' },
};
const ENVELOPE_REQUIRED = ['success', 'data', 'error', 'timestamp', 'request_id'];

function dataSchema(model: Type<unknown> | null, options: EnvelopeOptions): Record<string, unknown> {
  if (!model) return { type: 'object', nullable: true };
  const ref = { $ref: getSchemaPath(model) };
  if (options.isArray) return { type: 'array', items: ref };
  return options.nullable ? { allOf: [ref], nullable: true } : ref;
}

/** Documents a response as the envelope `{success, data: <model>, error, timestamp, request_id}`. */
export function ApiEnvelope(model: Type<unknown> | null, options: EnvelopeOptions = {}) {
  return applyDecorators(
    ...(model ? [ApiExtraModels(model)] : []),
    ApiResponse({
      status: options.status ?? 200,
      description: options.description ?? 'OK',
      schema: {
        type: 'object',
        required: ENVELOPE_REQUIRED,
        properties: { ...ENVELOPE_FIELDS, data: dataSchema(model, options) },
      },
    }),
  );
}

/**
 * Documents a `@FlatEnvelope()` answer (seed 003 routes): the model's fields at the top level
 * beside the envelope's, and `data` repeating the whole body (or the model's own `data`).
 */
export function ApiFlatEnvelope(model: Type<unknown>, options: Omit<EnvelopeOptions, 'isArray' | 'nullable'> = {}) {
  return applyDecorators(
    ApiExtraModels(model),
    ApiResponse({
      status: options.status ?? 200,
      description: options.description ?? 'OK (seed 003 fields at the top level, beside the envelope)',
      schema: {
        allOf: [
          { $ref: getSchemaPath(model) },
          {
            type: 'object',
            required: ENVELOPE_REQUIRED,
            properties: { ...ENVELOPE_FIELDS, data: { description: 'the same fields (or the series points)' } },
          },
        ],
      },
    }),
  );
}
