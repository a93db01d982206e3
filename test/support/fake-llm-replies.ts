// OpenAI chat-completions wire objects, built deterministically from a request body, for the
// fake provider (fake-llm-provider.ts). Field names and order follow what api.openai.com sends:
// `chat.completion` for non-stream, `chat.completion.chunk` frames for stream, and the
// `{error: {message, type, param, code}}` body of its errors.

/** The parts of a chat-completions request the fake reads (the rest is recorded, not interpreted). */
export interface ChatRequestBody {
  model?: string;
  messages?: { role?: string; content?: unknown }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  tools?: { type?: string; function?: { name?: string } }[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** What the fake answers for one request, before it is put on the wire. */
export interface Reply {
  id: string;
  created: number;
  model: string;
  /** Content deltas, in order; joined they are the message content. Empty for a tool call. */
  pieces: string[];
  toolCall?: ToolCall;
  finishReason: 'stop' | 'length' | 'tool_calls';
  usage: Usage;
}

/** Text of a message's content: a string, or the text parts of a content array. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p: unknown) =>
      p && typeof p === 'object' && (p as { type?: unknown }).type === 'text'
        ? String((p as { text?: unknown }).text ?? '')
        : '',
    )
    .join(' ');
}

/** The token estimate of the fake: whitespace-separated words. */
export const countTokens = (text: string): number => text.split(/\s+/).filter(Boolean).length;

export function lastUserMessage(body: ChatRequestBody): string {
  const users = (body.messages ?? []).filter((m) => m?.role === 'user');
  return messageText(users[users.length - 1]?.content);
}

/**
 * What the fake says: `echo: <last user message>`, or, right after tool results (the hub ran
 * the tools and called again), `tool said: <each result>` — so a test sees the result reached
 * the model.
 */
export function replyText(body: ChatRequestBody): string {
  const messages = body.messages ?? [];
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--)
    results.unshift(messageText(messages[i].content));
  return results.length > 0 ? `tool said: ${results.join(' | ')}` : `echo: ${lastUserMessage(body)}`;
}

/**
 * The reply text as word pieces, each after the first with its leading space (the
 * way OpenAI's tokens come). With `chunks`, exactly that many pieces: words are grouped, or the
 * reply is padded with ` w<i>` words when it has fewer.
 */
export function replyPieces(body: ChatRequestBody, chunks?: number): string[] {
  const words = replyText(body).split(/\s+/).filter(Boolean);
  if (chunks !== undefined && chunks > 0) {
    for (let i = words.length; i < chunks; i++) words.push(`w${i}`);
  }
  const pieces = words.map((w, i) => (i === 0 ? w : ` ${w}`));
  if (chunks === undefined || chunks <= 0 || pieces.length === chunks) return pieces;
  // More words than chunks: spread them over `chunks` pieces, in order.
  const out: string[] = [];
  for (let c = 0; c < chunks; c++) {
    const from = Math.floor((c * pieces.length) / chunks);
    const to = Math.floor(((c + 1) * pieces.length) / chunks);
    out.push(pieces.slice(from, to).join(''));
  }
  return out;
}

export function buildReply(
  body: ChatRequestBody,
  n: number,
  options: { chunks?: number; toolCall?: boolean; toolArguments?: string; model: string },
): Reply {
  const prompt = (body.messages ?? []).reduce((sum, m) => sum + countTokens(messageText(m?.content)), 0);
  const base = {
    id: `chatcmpl-fake${String(n).padStart(6, '0')}`,
    created: Math.floor(Date.now() / 1000),
    model: options.model,
  };
  const afterTools = body.messages?.[body.messages.length - 1]?.role === 'tool';
  const wantsTool =
    options.toolCall || (!!body.tools?.length && !afterTools && /call tool/i.test(lastUserMessage(body)));
  if (wantsTool) {
    const name = body.tools?.find((t) => t?.function?.name)?.function?.name ?? 'fake_tool';
    const args = options.toolArguments ?? JSON.stringify({ input: lastUserMessage(body) });
    return {
      ...base,
      pieces: [],
      toolCall: { id: `call_fake${String(n).padStart(6, '0')}`, type: 'function', function: { name, arguments: args } },
      finishReason: 'tool_calls',
      usage: usage(prompt, countTokens(args.replace(/[{}":,]/g, ' '))),
    };
  }
  let pieces = replyPieces(body, options.chunks);
  const limit = body.max_completion_tokens ?? body.max_tokens;
  const truncated = typeof limit === 'number' && limit >= 0 && limit < pieces.length;
  if (truncated) pieces = pieces.slice(0, limit);
  return { ...base, pieces, finishReason: truncated ? 'length' : 'stop', usage: usage(prompt, pieces.length) };
}

const usage = (prompt: number, completion: number): Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0 },
});

/** The non-stream answer: a `chat.completion` object. */
export function completionObject(r: Reply): Record<string, unknown> {
  const message = r.toolCall
    ? { role: 'assistant', content: null, tool_calls: [r.toolCall], refusal: null, annotations: [] }
    : { role: 'assistant', content: r.pieces.join(''), refusal: null, annotations: [] };
  return {
    id: r.id,
    object: 'chat.completion',
    created: r.created,
    model: r.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: r.finishReason }],
    usage: r.usage,
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
  };
}

/**
 * The `chat.completion.chunk` objects of a streamed answer, in order: the role chunk, content
 * (or tool-call) deltas, the chunk with finish_reason, and with include_usage a last chunk with
 * `choices: []` and the usage (every chunk before it then carries `usage: null`, as OpenAI's do).
 */
export function streamChunks(r: Reply, includeUsage: boolean): Record<string, unknown>[] {
  const chunk = (delta: Record<string, unknown>, finish: string | null): Record<string, unknown> => ({
    id: r.id,
    object: 'chat.completion.chunk',
    created: r.created,
    model: r.model,
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const out: Record<string, unknown>[] = [];
  if (r.toolCall) {
    const tc = r.toolCall;
    out.push(
      chunk(
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ index: 0, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }],
          refusal: null,
        },
        null,
      ),
    );
    for (const part of argumentFragments(tc.function.arguments))
      out.push(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }, null));
  } else {
    out.push(chunk({ role: 'assistant', content: '', refusal: null }, null));
    for (const piece of r.pieces) out.push(chunk({ content: piece }, null));
  }
  out.push(chunk({}, r.finishReason));
  if (includeUsage) {
    out.push({
      id: r.id,
      object: 'chat.completion.chunk',
      created: r.created,
      model: r.model,
      service_tier: 'default',
      system_fingerprint: 'fp_fake',
      choices: [],
      usage: r.usage,
    });
  }
  return out;
}

/** Tool-call arguments in fragments of up to 8 characters, as OpenAI streams them. */
function argumentFragments(args: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 8) out.push(args.slice(i, i + 8));
  return out;
}

export type ErrorStatus = 400 | 401 | 404 | 429 | 500 | 503;

/** OpenAI's error body for a status. */
export function errorBody(
  status: ErrorStatus,
  message?: string,
): { error: { message: string; type: string; param: string | null; code: string | null } } {
  const known: Record<ErrorStatus, [string, string, string | null]> = {
    400: ['Invalid request.', 'invalid_request_error', null],
    401: [
      'Incorrect API key provided: fake. You can find your API key at https://platform.openai.com/account/api-keys.',
      'invalid_request_error',
      'invalid_api_key',
    ],
    404: ['The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found'],
    429: ['Rate limit reached for requests (fake provider).', 'requests', 'rate_limit_exceeded'],
    500: ['The server had an error while processing your request. Sorry about that!', 'server_error', null],
    503: ['The engine is currently overloaded, please try again later.', 'server_error', null],
  };
  const [text, type, code] = known[status];
  return { error: { message: message ?? text, type, param: null, code } };
}
