import type { LlmProvider } from './llm-settings.js';

/** The upstream answered with an error status (its body kept for the message). */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly retryAfter: string | null,
  ) {
    super(`upstream answered ${status}`);
  }

  /** OpenAI-shaped message of the body, when it is one. */
  get upstreamMessage(): string {
    try {
      const m = (JSON.parse(this.body) as { error?: { message?: unknown } }).error?.message;
      if (typeof m === 'string') return m;
    } catch {
      // not JSON
    }
    return this.body.slice(0, 500) || `status ${this.status}`;
  }
}

/** The upstream sent `data: {"error": …}` in its stream. */
export class UpstreamStreamError extends Error {
  constructor(readonly error: Record<string, unknown>) {
    super(typeof error.message === 'string' ? error.message : 'upstream stream error');
  }
}

const headersFor = (p: LlmProvider): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  ...(p.api_key ? { authorization: `Bearer ${p.api_key}` } : {}),
});

/** POST `${base_url}/chat/completions`; resolves when the status line and headers are in. */
export async function postChat(p: LlmProvider, body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
  const res = await fetch(`${p.base_url.replace(/\/+$/, '')}/chat/completions`, {
    method: 'POST',
    headers: headersFor(p),
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    throw new UpstreamHttpError(res.status, text, res.headers.get('retry-after'));
  }
  return res;
}

/**
 * The JSON payloads of an OpenAI event stream, in order; ends at `data: [DONE]` or at the end
 * of the body. An in-band `{"error": …}` is thrown as UpstreamStreamError.
 */
export async function* sseEvents(res: Response): AsyncGenerator<Record<string, unknown>> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer[end] === '\r' ? 4 : 2));
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(data) as Record<string, unknown>;
      } catch {
        throw new UpstreamStreamError({ message: 'upstream sent an unreadable event', type: 'server_error' });
      }
      if (event.error && typeof event.error === 'object') throw new UpstreamStreamError(event.error as Record<string, unknown>);
      yield event;
    }
  }
}
