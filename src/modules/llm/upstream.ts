import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LlmProvider } from './llm-settings.js';
import { SseEventTooLargeError, SseParser } from './sse-parser.js';

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

// Keep-alive pools: a call reuses a warm connection to its provider (node:http, not fetch:
// fetch's web streams cost several times the CPU per call, and the gateway's overhead is the point).
const agents = {
  'http:': new http.Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 1024, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 1024, scheduling: 'lifo' }),
};

/** Where a provider's chat completions go, as node:http options (parsed once per base_url, not per call). */
interface Endpoint {
  lib: typeof http | typeof https;
  agent: http.Agent;
  hostname: string;
  port: string;
  path: string;
}

const endpoints = new Map<string, Endpoint>();
function endpointOf(p: LlmProvider): Endpoint {
  let endpoint = endpoints.get(p.base_url);
  if (!endpoint) {
    const url = new URL(`${p.base_url.replace(/\/+$/, '')}/chat/completions`);
    const secure = url.protocol === 'https:';
    endpoint = {
      lib: secure ? https : http,
      agent: agents[secure ? 'https:' : 'http:'],
      // An IPv6 literal comes bracketed in a URL, bare in node:http's options.
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port,
      path: `${url.pathname}${url.search}`,
    };
    endpoints.set(p.base_url, endpoint);
  }
  return endpoint;
}

/**
 * POST `${base_url}/chat/completions`; resolves with the response once its status line and
 * headers are in (an error status is read and thrown as UpstreamHttpError). Aborting the
 * signal destroys the connection, which is what the upstream sees.
 */
/** `traceparent`: the upstream call's span, for a provider (or a proxy before it) that traces. */
export function postChat(
  p: LlmProvider,
  body: Record<string, unknown>,
  signal: AbortSignal,
  traceparent?: string,
): Promise<IncomingMessage> {
  const { lib, agent, hostname, port, path } = endpointOf(p);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        hostname,
        port,
        path,
        method: 'POST',
        agent,
        signal,
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          accept: 'application/json, text/event-stream',
          ...(p.api_key ? { authorization: `Bearer ${p.api_key}` } : {}),
          ...(traceparent ? { traceparent } : {}),
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        readText(res).then((text) => reject(new UpstreamHttpError(status, text, headerOf(res, 'retry-after'))), reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const headerOf = (res: IncomingMessage, name: string): string | null => {
  const v = res.headers[name];
  return typeof v === 'string' ? v : null;
};

/** Largest upstream answer read whole (a non-streamed completion, an error body): past it the call fails. */
const MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024;

export function readText(res: IncomingMessage, limit = MAX_UPSTREAM_BODY_BYTES): Promise<string> {
  // Listeners, not `for await`: the async iterator costs several promises and stream helpers per chunk.
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > limit) {
        cleanup();
        res.destroy();
        reject(new UpstreamStreamError({ message: `upstream answer is over ${limit} bytes`, type: 'server_error' }));
        return;
      }
      parts.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(parts.length === 1 ? parts[0].toString('utf8') : Buffer.concat(parts).toString('utf8'));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    // Closed before its end (a reset, an abort): what `for await` reports as a premature close.
    const onClose = (): void => {
      if (res.complete) return;
      cleanup();
      reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    // The 'error' listener stays: an error after the end must not go unhandled (a settled promise ignores it).
    const cleanup = (): void => {
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('close', onClose);
    };
    res.on('data', onData);
    res.on('end', onEnd);
    res.on('error', onError);
    res.on('close', onClose);
  });
}

/**
 * The JSON text each object parsed from an upstream answer came from (a completion, a stream
 * chunk): the hub sends those bytes on instead of serializing the object again. Objects are
 * never changed in place on their way to the client (a rewrite is a new object, without an
 * entry here), so the text is the object.
 */
const upstreamText = new WeakMap<object, string>();

/** The upstream's own JSON text of `value` when it is an object parsed from an upstream answer, as it was. */
export const upstreamJson = (value: object): string | undefined => upstreamText.get(value);

function parseUpstream(text: string): Record<string, unknown> {
  const value = JSON.parse(text) as Record<string, unknown>;
  // Text that spans lines cannot be one SSE `data:` line: such objects are serialized again.
  if (typeof value === 'object' && value !== null && !/[\r\n]/.test(text)) upstreamText.set(value, text);
  return value;
}

export async function readJson(res: IncomingMessage): Promise<Record<string, unknown>> {
  return parseUpstream(await readText(res));
}

/**
 * The JSON payloads of an OpenAI event stream, in order; ends at `data: [DONE]` or at the end
 * of the body. An in-band `{"error": …}` is thrown as UpstreamStreamError. The body is read as
 * the SSE spec says (sse-parser.ts: CRLF, LF or CR line endings, comments, multi-line data);
 * every event with data counts, whatever its `event` type, and one with blank data is skipped.
 */
export async function* sseEvents(res: IncomingMessage): AsyncGenerator<Record<string, unknown>> {
  const parser = new SseParser();
  for await (const chunk of res as AsyncIterable<Buffer>) {
    for (const { data } of eventsOf(parser, chunk)) {
      const payload = data.trim(); // as before: `data:   [DONE]` still ends the stream
      if (!payload) continue;
      if (payload === '[DONE]') return;
      let event: Record<string, unknown>;
      try {
        event = parseUpstream(data);
      } catch {
        throw new UpstreamStreamError({ message: 'upstream sent an unreadable event', type: 'server_error' });
      }
      if (event.error && typeof event.error === 'object')
        throw new UpstreamStreamError(event.error as Record<string, unknown>);
      yield event;
    }
  }
  // The body ended without [DONE]: the stream was cut.
  if (!res.complete) throw new Error('upstream stream was cut');
}

/** The events a chunk completes; an event past the parser's bound is an upstream error (the call fails over or ends). */
function eventsOf(parser: SseParser, chunk: Buffer): ReturnType<SseParser['push']> {
  try {
    return parser.push(chunk);
  } catch (e) {
    if (e instanceof SseEventTooLargeError) throw new UpstreamStreamError({ message: e.message, type: 'server_error' });
    throw e;
  }
}
