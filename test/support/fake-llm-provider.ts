// A fake OpenAI-compatible upstream on plain node:http, for the LLM gateway's tests and W8
// (bench/w8-llm.ts, which runs it as its own process through bench/lib/fake-llm-server.ts).
//
//   const provider = await startFakeProvider();          // provider.url = http://127.0.0.1:PORT/v1
//   provider.setBehavior({ status: 429, retryAfterSeconds: 1, times: 1 });   // next request only
//   provider.setBehavior({ dripMs: 20, chunks: 10 }, 'slow-model');          // one model
//   await provider.waitForRequests(1, 2000); provider.lastRequest()?.aborted
//
// GET /v1/models lists the configured models; POST /v1/chat/completions answers
// `echo: <last user message>` (fake-llm-replies.ts) as OpenAI does, non-stream or as
// `text/event-stream` frames ending in `data: [DONE]`, or a tool call when the request has
// tools and the last user message says "call tool" (or the behavior says toolCall). Every chat
// request is recorded, including whether the client went away before the answer ended.
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  buildReply,
  type ChatRequestBody,
  completionObject,
  errorBody,
  type ErrorStatus,
  streamChunks,
} from './fake-llm-replies.js';

/** How the fake answers; set globally or per model (a model's behavior replaces the global one). */
export interface FakeBehavior {
  /** Wait this long before the first byte (headers) of the answer. */
  firstByteDelayMs?: number;
  /** Stream: wait this long between frames (0 = all at once). */
  dripMs?: number;
  /** Exactly this many content deltas (the reply is grouped or padded with ` w<i>` words). */
  chunks?: number;
  /** Destroy the socket after this many `data:` frames (stream), or half-way through the body (non-stream). */
  cutAfterChunks?: number;
  /** Answer this status with OpenAI's error body instead of a completion. */
  status?: 429 | 500 | 503 | 401 | 400 | 404;
  /** With status 429: the retry-after header. */
  retryAfterSeconds?: number;
  /** Stream: after this many frames send `data: {"error": …}` and end, without [DONE]. */
  inBandErrorAfterChunks?: number;
  /** Accept the request and never answer. */
  hang?: boolean;
  /** Answer with a tool call (the first of the request's tools, else `fake_tool`). */
  toolCall?: boolean;
  /** The tool call's arguments (JSON text); default `{"input": <last user message>}`. */
  toolArguments?: string;
  /**
   * Stream: how each frame's lines end (default lf: `data: …\n\n`); crlf-lf is `data: …\r\n\n`.
   * Every one is valid SSE.
   */
  lineEnding?: 'lf' | 'crlf' | 'cr' | 'crlf-lf';
  /** Apply to the next `times` requests only, then fall back (model → global → default). */
  times?: number;
}

export interface RecordedRequest {
  /** 1, 2, 3 … in arrival order (chat completions only). */
  id: number;
  model: string;
  path: string;
  stream: boolean;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: ChatRequestBody | undefined;
  headers: IncomingHttpHeaders;
  /** Date.now() milliseconds. */
  startedAt: number;
  firstByteAt?: number;
  finishedAt?: number;
  /** The client closed the connection before the answer ended (not set by cutAfterChunks). */
  aborted: boolean;
  abortedAt?: number;
  /** The fake destroyed the socket on purpose (cutAfterChunks). */
  cut: boolean;
  /** HTTP status sent; 0 until the head is written (a hang stays 0). */
  status: number;
}

export interface FakeProviderOptions {
  port?: number;
  host?: string;
  /** Initial models (default ['fake-model']). */
  models?: string[];
  /** When set, requests need `Authorization: Bearer <apiKey>` (else 401 invalid_api_key). */
  apiKey?: string;
  /** Keep only the last N recorded requests (ids stay sequential; `total` counts all). Default: all. */
  maxRecorded?: number;
  /** Serve /__fake/{behavior,reset,models,stats} (JSON) so another process can steer it (the CLI does). */
  control?: boolean;
}

export interface FakeProvider {
  /** Base URL ending in /v1, e.g. http://127.0.0.1:41234/v1 */
  readonly url: string;
  readonly port: number;
  /** Recorded chat-completion requests (the last maxRecorded). */
  readonly requests: RecordedRequest[];
  /** Chat-completion requests received so far. */
  readonly total: number;
  /** GET /v1/models calls received so far. */
  readonly modelListCalls: number;
  setModels(models: string[]): void;
  setBehavior(behavior: FakeBehavior, model?: string): void;
  /** Default behavior everywhere, models back to the initial ones, recordings cleared. */
  reset(): void;
  lastRequest(): RecordedRequest | undefined;
  /** Resolves once `n` chat requests have arrived in total; rejects after `ms`. */
  waitForRequests(n: number, ms?: number): Promise<RecordedRequest[]>;
  /** Resolves once `predicate()` holds; rejects after `ms`. */
  waitFor(predicate: () => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

const now = (): number => Date.now();

export async function startFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const state = new FakeState(options);
  const server = createServer((req, res) => state.handle(req, res));
  // Long keep-alive, like a real API behind a CDN: a gateway's pooled sockets must not race a 5 s close.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1';
  return facade(state, server, `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`, port);
}

function facade(self: FakeState, server: Server, url: string, port: number): FakeProvider {
  return {
    url,
    port,
    get requests() {
      return self.requests;
    },
    get total() {
      return self.total;
    },
    get modelListCalls() {
      return self.modelListCalls;
    },
    setModels: (models) => self.setModels(models),
    setBehavior: (behavior, model) => self.setBehavior(behavior, model),
    reset: () => self.reset(),
    lastRequest: () => self.requests[self.requests.length - 1],
    waitForRequests: async (n, ms = 2000) => {
      await self.waitFor(() => self.total >= n, ms, `${n} requests (got ${self.total})`);
      return self.requests;
    },
    waitFor: (predicate, ms = 2000) => self.waitFor(predicate, ms, 'condition'),
    close: () => {
      self.stop();
      return new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
    },
  };
}

class FakeState {
  readonly requests: RecordedRequest[] = [];
  total = 0;
  modelListCalls = 0;
  private models: string[];
  private behaviors = new Map<string, FakeBehavior>(); // '' = global
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing = false;

  constructor(private readonly options: FakeProviderOptions) {
    this.models = [...(options.models ?? ['fake-model'])];
  }

  setModels(models: string[]): void {
    this.models = [...models];
  }

  setBehavior(behavior: FakeBehavior, model?: string): void {
    this.behaviors.set(model ?? '', { ...behavior });
  }

  /** Pending delays are dropped; answers in progress stop at their next step. */
  stop(): void {
    this.closing = true;
    this.timers.forEach((t) => clearTimeout(t));
    this.timers.clear();
  }

  reset(): void {
    this.behaviors.clear();
    this.models = [...(this.options.models ?? ['fake-model'])];
    this.requests.length = 0;
    this.total = 0;
    this.modelListCalls = 0;
  }

  async waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = now() + ms;
    while (!predicate()) {
      if (now() > deadline) throw new Error(`fake provider: timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    if (req.method === 'GET' && path === '/v1/models') {
      this.modelListCalls++;
      const created = 1_700_000_000;
      return json(res, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', created, owned_by: 'fake' })),
      });
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') return void this.chat(req, res, path);
    if (this.options.control && path.startsWith('/__fake/')) return void this.control(req, res, path);
    json(res, 404, {
      error: { message: `Invalid URL (${req.method} ${path})`, type: 'invalid_request_error', param: null, code: null },
    });
  }

  /** The behavior for `model`, counting down a `times` one. */
  private behaviorFor(model: string): FakeBehavior {
    for (const key of [model, '']) {
      const b = this.behaviors.get(key);
      if (!b) continue;
      if (b.times !== undefined) {
        if (b.times <= 0) {
          this.behaviors.delete(key);
          continue;
        }
        if (--b.times === 0) this.behaviors.delete(key);
      }
      return b;
    }
    return {};
  }

  private async chat(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const rec: RecordedRequest = {
      id: 0,
      model: '',
      path,
      stream: false,
      body: undefined,
      headers: req.headers,
      startedAt: now(),
      aborted: false,
      cut: false,
      status: 0,
    };
    // Listening before the body is read: a client that leaves at any point is recorded.
    res.on('close', () => {
      rec.finishedAt ??= now();
      if (!res.writableFinished && !rec.cut && !this.closing) {
        rec.aborted = true;
        rec.abortedAt = now();
      }
    });
    const raw = await readBody(req);
    let body: ChatRequestBody | undefined;
    try {
      body = JSON.parse(raw) as ChatRequestBody;
    } catch {
      body = undefined;
    }
    const n = ++this.total;
    Object.assign(rec, {
      id: n,
      model: typeof body?.model === 'string' ? body.model : '',
      stream: body?.stream === true,
      body,
    });
    this.requests.push(rec);
    if (this.options.maxRecorded !== undefined && this.requests.length > this.options.maxRecorded)
      this.requests.shift();

    const wire = new Wire(res, rec, this.timers, () => this.closing);
    if (this.options.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.options.apiKey}`)
      return wire.error(401);
    if (!body || typeof body !== 'object' || !Array.isArray(body.messages) || typeof body.model !== 'string') {
      return wire.error(
        400,
        !body
          ? 'We could not parse the JSON body of your request.'
          : "Missing required parameter: 'model' or 'messages'.",
      );
    }
    if (!this.models.includes(body.model))
      return wire.error(404, `The model \`${body.model}\` does not exist or you do not have access to it.`);
    const b = this.behaviorFor(body.model);
    if (b.hang) return; // accepted, never answered; `close` records the client leaving
    if (b.firstByteDelayMs) await wire.sleep(b.firstByteDelayMs);
    if (wire.gone) return;
    if (b.status) return wire.error(b.status, undefined, b.status === 429 ? b.retryAfterSeconds : undefined);
    const reply = buildReply(body, n, {
      chunks: b.chunks,
      toolCall: b.toolCall,
      toolArguments: b.toolArguments,
      model: body.model,
    });
    if (!rec.stream) {
      const text = JSON.stringify(completionObject(reply));
      if (b.cutAfterChunks !== undefined) return wire.cutBody(text);
      return wire.json(200, text);
    }
    await wire.stream(streamChunks(reply, body.stream_options?.include_usage === true), b);
  }

  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const raw = await readBody(req);
    const body = (raw ? JSON.parse(raw) : {}) as { behavior?: FakeBehavior; model?: string; models?: string[] };
    if (path === '/__fake/behavior') this.setBehavior(body.behavior ?? {}, body.model);
    else if (path === '/__fake/reset') this.reset();
    else if (path === '/__fake/models' && body.models) this.models = [...body.models];
    else if (path !== '/__fake/stats') return json(res, 404, { error: `unknown control path ${path}` });
    const aborted = this.requests.filter((r) => r.aborted).length;
    json(res, 200, {
      total: this.total,
      recorded: this.requests.length,
      aborted_recorded: aborted,
      model_list_calls: this.modelListCalls,
    });
  }
}

/** Writes one answer; stops quietly once the client has gone (or the fake is closing). */
class Wire {
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly res: ServerResponse,
    private readonly rec: RecordedRequest,
    private readonly timers: Set<NodeJS.Timeout>,
    private readonly closing: () => boolean,
  ) {}

  get gone(): boolean {
    return this.res.destroyed || this.rec.aborted || this.closing();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((ok) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        ok();
      }, ms);
      this.timers.add(t);
    });
  }

  private head(status: number, headers: Record<string, string>): void {
    this.rec.status = status;
    this.rec.firstByteAt = now();
    this.res.writeHead(status, { 'x-request-id': `req_fake${this.rec.id}`, 'openai-processing-ms': '1', ...headers });
  }

  json(status: number, text: string): void {
    this.head(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    this.res.end(text);
  }

  error(status: ErrorStatus, message?: string, retryAfterSeconds?: number): void {
    const text = JSON.stringify(errorBody(status, message));
    this.head(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...(retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {}),
    });
    this.res.end(text);
  }

  /** Non-stream cut: the head promises the whole body, half of it goes out, then the socket is destroyed. */
  cutBody(text: string): void {
    const bytes = Buffer.from(text);
    this.head(200, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
    this.res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => this.cut());
  }

  private cut(): void {
    this.rec.cut = true;
    this.res.socket?.destroy();
  }

  /**
   * Frames in order, `dripMs` apart. inBandErrorAfterChunks / cutAfterChunks count frames sent
   * before the error frame / the cut; at or past the last frame they replace `data: [DONE]`.
   */
  async stream(chunks: Record<string, unknown>[], b: FakeBehavior): Promise<void> {
    this.head(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const end = { lf: '\n\n', crlf: '\r\n\r\n', cr: '\r\r', 'crlf-lf': '\r\n\n' }[b.lineEnding ?? 'lf'];
    for (let sent = 0; ; sent++) {
      if (this.gone) return;
      if (b.inBandErrorAfterChunks !== undefined && sent >= b.inBandErrorAfterChunks) {
        this.res.end(`data: ${JSON.stringify(errorBody(500))}${end}`);
        return;
      }
      if (b.cutAfterChunks !== undefined && sent >= b.cutAfterChunks) {
        if (sent === 0) this.res.flushHeaders();
        await this.pending; // the frames reach the socket before it is destroyed
        setImmediate(() => this.cut());
        return;
      }
      if (sent === chunks.length) break;
      if (sent > 0 && b.dripMs) await this.sleep(b.dripMs);
      if (this.gone) return;
      const frame = `data: ${JSON.stringify(chunks[sent])}${end}`;
      this.pending = new Promise((ok) => this.res.write(frame, () => ok()));
    }
    this.res.end(`data: [DONE]${end}`);
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((ok) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => ok(Buffer.concat(parts).toString('utf8')));
    req.on('error', () => ok(Buffer.concat(parts).toString('utf8')));
    req.on('close', () => ok(Buffer.concat(parts).toString('utf8')));
  });
}
