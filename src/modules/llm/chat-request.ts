import { LlmError } from './llm-error.js';

/**
 * A Chat Completions request as the gateway needs it: the fields it reads are checked, the
 * rest is passed through to the provider untouched (`body`).
 */
export interface ChatRequest {
  /** As the client named it (may be an alias, or absent → the default model). */
  model: string | undefined;
  stream: boolean;
  /** The client asked for a last usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
  maxTokens: number | undefined;
  body: Record<string, unknown>;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (param: string, message: string): LlmError => LlmError.invalid(param, message);

function optionalNumber(body: Record<string, unknown>, key: string, min: number, max: number, integer = false): void {
  const v = body[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw bad(key, `${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
}

/** Checks what OpenAI itself would refuse, naming the parameter; throws LlmError 400. */
export function parseChatRequest(raw: unknown): ChatRequest {
  if (!isObject(raw)) throw bad('body', 'The request body must be a JSON object');
  const body = raw;
  if (
    body.model !== undefined &&
    (typeof body.model !== 'string' || body.model.length === 0 || body.model.length > 256)
  ) {
    throw bad('model', 'model must be a non-empty string');
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw bad('messages', 'messages must be a non-empty array');
  if (messages.length > 10_000) throw bad('messages', 'messages has more than 10000 entries');
  for (const [i, m] of messages.entries()) {
    if (!isObject(m)) throw bad(`messages[${i}]`, `messages[${i}] must be an object`);
    if (typeof m.role !== 'string' || !ROLES.has(m.role))
      throw bad(`messages[${i}].role`, `messages[${i}].role must be one of ${[...ROLES].join(', ')}`);
    const c = m.content;
    const hasToolCalls = m.role === 'assistant' && Array.isArray(m.tool_calls);
    if (!(typeof c === 'string' || Array.isArray(c) || ((c === null || c === undefined) && hasToolCalls))) {
      throw bad(`messages[${i}].content`, `messages[${i}].content must be a string or an array of content parts`);
    }
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw bad('stream', 'stream must be a boolean');
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw bad('stream_options', 'stream_options must be an object');
    if (body.stream !== true) throw bad('stream_options', 'stream_options is only allowed when stream is true');
    if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean')
      throw bad('stream_options.include_usage', 'stream_options.include_usage must be a boolean');
  }
  optionalNumber(body, 'temperature', 0, 2);
  optionalNumber(body, 'top_p', 0, 1);
  optionalNumber(body, 'n', 1, 128, true);
  optionalNumber(body, 'max_tokens', 1, 10_000_000, true);
  optionalNumber(body, 'max_completion_tokens', 1, 10_000_000, true);
  optionalNumber(body, 'presence_penalty', -2, 2);
  optionalNumber(body, 'frequency_penalty', -2, 2);
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw bad('tools', 'tools must be an array');
    for (const [i, t] of body.tools.entries()) {
      if (!isObject(t) || typeof t.type !== 'string')
        throw bad(`tools[${i}]`, `tools[${i}] must be an object with a type`);
      if (t.type === 'function' && (!isObject(t.function) || typeof t.function.name !== 'string')) {
        throw bad(`tools[${i}].function.name`, `tools[${i}].function.name must be a string`);
      }
    }
  }
  const tc = body.tool_choice;
  if (
    tc !== undefined &&
    tc !== null &&
    !(typeof tc === 'string' ? ['none', 'auto', 'required'].includes(tc) : isObject(tc))
  ) {
    throw bad('tool_choice', 'tool_choice must be none, auto, required or an object naming a tool');
  }
  const stop = body.stop;
  if (
    stop !== undefined &&
    stop !== null &&
    !(typeof stop === 'string' || (Array.isArray(stop) && stop.length <= 4 && stop.every((s) => typeof s === 'string')))
  ) {
    throw bad('stop', 'stop must be a string or an array of at most 4 strings');
  }
  if (body.response_format !== undefined && body.response_format !== null && !isObject(body.response_format)) {
    throw bad('response_format', 'response_format must be an object');
  }
  if (body.user !== undefined && body.user !== null && typeof body.user !== 'string')
    throw bad('user', 'user must be a string');
  const maxTokens = (body.max_completion_tokens ?? body.max_tokens) as number | undefined;
  return {
    model: body.model as string | undefined,
    stream: body.stream === true,
    includeUsage: body.stream === true && isObject(so) && so.include_usage === true,
    maxTokens: maxTokens ?? undefined,
    body,
  };
}

/** Completion tokens assumed when a request sets no max: only for the reservation, settled to the real use after. */
export const DEFAULT_COMPLETION_ESTIMATE = 1024;

/** A cheap prompt-size estimate (about 4 characters a token) for the reservation. */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  let chars = 0;
  for (const m of body.messages as Record<string, unknown>[]) {
    const c = m.content;
    if (typeof c === 'string') chars += c.length;
    else if (Array.isArray(c))
      for (const part of c)
        chars += typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text.length : 256;
    chars += 16;
  }
  if (Array.isArray(body.tools)) chars += JSON.stringify(body.tools).length;
  return Math.max(1, Math.ceil(chars / 4));
}

export const estimateTextTokens = (text: string): number => Math.ceil(text.length / 4);
