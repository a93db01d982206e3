/**
 * An error of the OpenAI-compatible surface, in OpenAI's terms so the official clients raise
 * the right exception: `{error: {message, type, param, code}}` with the HTTP status.
 */
export class LlmError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly extra: { retryAfterSeconds?: number; shouldRetry?: boolean } = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  static invalid(param: string, message: string): LlmError {
    return new LlmError(400, 'invalid_request_error', message, 'invalid_value', param);
  }
}
