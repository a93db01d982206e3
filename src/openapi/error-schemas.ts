import type { OpenAPIObject } from '@nestjs/swagger';
import { OPENAI_PATHS } from '../modules/llm/openai-errors.js';

type Schema = Record<string, unknown>;

const code = { type: 'string', example: 'NOT_FOUND' };
const details = { type: 'object', additionalProperties: true, nullable: true };

/**
 * The error bodies the hub answers with, one per surface (see GlobalExceptionFilter,
 * CodexExceptionFilter, Seed004ExceptionFilter and openai-errors.ts).
 */
export const ERROR_SCHEMAS: Record<string, Schema> = {
  ErrorEnvelope: {
    type: 'object',
    description: 'The canonical error envelope (`VALIDATION_ERROR` is `INVALID_REQUEST` on seed 003 routes)',
    required: ['success', 'data', 'error', 'timestamp', 'request_id'],
    properties: {
      success: { type: 'boolean', enum: [false] },
      data: { type: 'object', nullable: true, example: null },
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code, message: { type: 'string' }, details },
      },
      timestamp: { type: 'string', format: 'date-time' },
      request_id: { type: 'string' },
    },
  },
  OpenAiError: {
    type: 'object',
    description: "OpenAI's error shape, parsed by the official clients",
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['message', 'type', 'param', 'code'],
        properties: {
          message: { type: 'string' },
          type: { type: 'string', example: 'invalid_request_error' },
          param: { type: 'string', nullable: true },
          code: { type: 'string', nullable: true, example: 'invalid_api_key' },
        },
      },
    },
  },
  CodexError: {
    type: 'object',
    description: 'Seed 000 (Codex Father) error shape; `details.timestamp` always, `details.taskId` on TASK_NOT_FOUND',
    required: ['success', 'error', 'timestamp', 'requestId'],
    properties: {
      success: { type: 'boolean', enum: [false] },
      error: {
        type: 'object',
        required: ['code', 'message', 'details'],
        properties: { code: { type: 'string', example: 'TASK_NOT_FOUND' }, message: { type: 'string' }, details },
      },
      timestamp: { type: 'string', format: 'date-time' },
      requestId: { type: 'string' },
    },
  },
  Seed004Error: {
    type: 'object',
    description: 'Seed 004 (distributed task system) error shape',
    required: ['success', 'message', 'error_code', 'request_id'],
    properties: {
      success: { type: 'boolean', enum: [false] },
      message: { type: 'string' },
      error_code: code,
      details,
      request_id: { type: 'string' },
    },
  },
};

/** Seed 004's routes (DistributedController, answered by Seed004ExceptionFilter). */
const SEED004_PATHS = /^\/(api\/(devices|tasks|dispatch-task|task\/)|$)/;
/** Seed 000's task routes (CodexController, answered by CodexExceptionFilter). */
const CODEX_PATHS = /^\/tasks(\/|$)/;

/** Which error body a path answers with: the exception filters choose by route the same way. */
export function errorSchemaFor(path: string): keyof typeof ERROR_SCHEMAS {
  if (OPENAI_PATHS.test(path)) return 'OpenAiError';
  if (CODEX_PATHS.test(path)) return 'CodexError';
  if (SEED004_PATHS.test(path)) return 'Seed004Error';
  return 'ErrorEnvelope';
}

/**
 * Gives every documented 4xx/5xx response that names no body the error body of its surface,
 * so the decorators only have to say which statuses a route answers and why.
 */
export function attachErrorSchemas(document: OpenAPIObject): void {
  document.components ??= {};
  document.components.schemas = { ...document.components.schemas, ...ERROR_SCHEMAS };
  for (const [path, item] of Object.entries(document.paths)) {
    const ref = { $ref: `#/components/schemas/${errorSchemaFor(path)}` };
    for (const op of Object.values(item)) {
      if (typeof op !== 'object' || op === null || !('responses' in op)) continue;
      const responses = (op.responses ?? {}) as Record<string, { content?: unknown }>;
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) < 400 || response.content !== undefined) continue;
        response.content = { 'application/json': { schema: ref } };
      }
    }
  }
}
