import type { Response } from 'express';
import { type AppError, ErrorCode } from '../../common/errors.js';
import { LlmError } from './llm-error.js';
import { sendJson } from '../../common/send-json.js';

/** Paths answered in OpenAI's error shape (the official clients parse these). */
export const OPENAI_PATHS = /^\/v1\/(chat\/completions|models|interrupt)(\/|$|\?)/;

const TYPE: Partial<Record<ErrorCode, { type: string; code: string | null }>> = {
  [ErrorCode.UNAUTHORIZED]: { type: 'invalid_request_error', code: 'invalid_api_key' },
  [ErrorCode.FORBIDDEN]: { type: 'permission_error', code: 'forbidden' },
  [ErrorCode.RATE_LIMITED]: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  [ErrorCode.VALIDATION_ERROR]: { type: 'invalid_request_error', code: 'invalid_value' },
  [ErrorCode.PAYLOAD_TOO_LARGE]: { type: 'invalid_request_error', code: 'request_too_large' },
  [ErrorCode.NOT_FOUND]: { type: 'invalid_request_error', code: 'not_found' },
  [ErrorCode.SERVICE_UNAVAILABLE]: { type: 'server_error', code: 'service_unavailable' },
};

/** A hub error (auth guard, rate limit, body parser) in OpenAI's terms. */
export function llmErrorOf(e: AppError): LlmError {
  // Any other client error (415, 405, …) is still the client's: invalid_request_error under its own code.
  const t =
    TYPE[e.code] ??
    (e.status < 500
      ? { type: 'invalid_request_error', code: e.code.toLowerCase() }
      : { type: 'server_error', code: 'internal_error' });
  const field = e.details?.field;
  return new LlmError(e.status, t.type, e.message, t.code, typeof field === 'string' ? field : null);
}

/**
 * Writes `{error: {message, type, param, code}}` with the status and the retry headers the
 * OpenAI clients read: `retry-after` when waiting helps, `x-should-retry: false` when it does not.
 */
export function sendLlmError(res: Response, e: LlmError): void {
  if (e.extra.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(e.extra.retryAfterSeconds));
  if (e.extra.shouldRetry !== undefined) res.setHeader('x-should-retry', String(e.extra.shouldRetry));
  sendJson(res, e.status, e.body());
}
