// One OpenAI-style event stream written with each kind of line ending the SSE spec allows, and
// ways to cut its bytes into chunks: for the upstream parser's unit tests.

/** The lines of the stream ('' is an empty line, which ends an event). */
export const openAiStreamLines: readonly string[] = [
  ': keep-alive', // a comment before anything (OpenRouter and others send these)
  '', // an empty line after only a comment: no event
  'id: chatcmpl-1-0',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"你好，"},"finish_reason":null}]}',
  '',
  ': keep-alive',
  'event: message',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk",', // one event's data on two lines
  'data: "choices":[{"index":0,"delta":{"content":"世界 🌍!"},"finish_reason":null}]}',
  '',
  'retry: 3000',
  'event: chunk',
  'id: chatcmpl-1-3',
  'data:{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}',
  '',
  'data: [DONE]',
  '',
];

/** The events the SSE spec dispatches for openAiStreamLines. */
export const openAiStreamEvents = [
  {
    type: 'message',
    lastEventId: 'chatcmpl-1-0',
    data: '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
  },
  {
    type: 'message',
    lastEventId: 'chatcmpl-1-0',
    data: '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"你好，"},"finish_reason":null}]}',
  },
  {
    type: 'message',
    lastEventId: 'chatcmpl-1-0',
    data: '{"id":"chatcmpl-1","object":"chat.completion.chunk",\n"choices":[{"index":0,"delta":{"content":"世界 🌍!"},"finish_reason":null}]}',
  },
  {
    type: 'chunk',
    lastEventId: 'chatcmpl-1-3',
    data: '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
  },
  {
    type: 'message',
    lastEventId: 'chatcmpl-1-3',
    data: '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}',
  },
  { type: 'message', lastEventId: 'chatcmpl-1-3', data: '[DONE]' },
];

/** The JSON payloads an OpenAI client takes from openAiStreamLines (up to `[DONE]`). */
export const openAiStreamPayloads = openAiStreamEvents
  .filter((e) => e.data !== '[DONE]')
  .map((e) => JSON.parse(e.data) as Record<string, unknown>);

const MIXED = ['\r\n', '\n', '\r'];

/**
 * `lines` joined into one stream text, every line ended by:
 * - lf, crlf, cr: that ending;
 * - crlf-lf: CRLF after a field and LF after the empty line (`\r\n\n` between events);
 * - mixed: CRLF, LF and CR in turn. A CR is never followed by the LF of an empty line: that pair
 *   is one CRLF line ending, and the empty line would be gone (so CRLF is used there instead).
 */
export function sseText(lines: readonly string[], form: 'lf' | 'crlf' | 'cr' | 'crlf-lf' | 'mixed'): string {
  let text = '';
  let previous = '';
  lines.forEach((line, i) => {
    let end = { lf: '\n', crlf: '\r\n', cr: '\r', 'crlf-lf': line ? '\r\n' : '\n', mixed: MIXED[i % 3] }[form];
    if (previous === '\r' && line === '' && end.startsWith('\n')) end = '\r\n';
    text += line + end;
    previous = end;
  });
  return text;
}

export const SSE_FORMS = ['lf', 'crlf', 'cr', 'crlf-lf', 'mixed'] as const;

/** Every way to cut `bytes` in two (including the empty first and last piece), then one byte per chunk. */
export function* chunkings(bytes: Uint8Array): Generator<{ name: string; chunks: Uint8Array[] }> {
  for (let at = 0; at <= bytes.length; at++)
    yield { name: `split at byte ${at}`, chunks: [bytes.subarray(0, at), bytes.subarray(at)] };
  yield { name: 'one byte per chunk', chunks: Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)) };
}
