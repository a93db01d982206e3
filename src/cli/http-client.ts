import type { HubSchemas } from '../sdk/hub-client.js';

/**
 * A small fetch wrapper for the hub's canonical API (`{success, data, error, ...}` envelopes).
 * The commands name their answers with the contract's types (HubSchemas, from openapi.json).
 */

export type ApiErrorBody = HubSchemas['ErrorEnvelope']['error'];

interface Envelope<T> {
  success: boolean;
  data: T;
  error: ApiErrorBody | null;
  timestamp?: string;
  request_id?: string;
}

/** An error answer from the hub, or a failure to reach it (`NETWORK_ERROR`, `BAD_RESPONSE`). */
export class HubError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> | null = null,
    readonly status = 0,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
}

export class HubClient {
  constructor(
    readonly baseUrl: string,
    private readonly key: string | undefined,
  ) {}

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    return this.request<T>('POST', path, { body: body ?? {}, headers });
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body: body ?? {} });
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('DELETE', path, { query });
  }

  /** Sends the request and returns the envelope's `data`; throws HubError otherwise. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.url(path, opts.query);
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (e) {
      throw new HubError('NETWORK_ERROR', `cannot reach ${this.baseUrl}: ${describe(e)}`);
    }
    const text = await res.text();
    let body: Envelope<T> | null;
    try {
      body = text ? (JSON.parse(text) as Envelope<T>) : null;
    } catch {
      body = null;
    }
    if (!body || typeof body !== 'object' || typeof body.success !== 'boolean') {
      throw new HubError('BAD_RESPONSE', `unexpected answer from ${url} (HTTP ${res.status})`, null, res.status);
    }
    if (!body.success || !res.ok) {
      const err = body.error ?? { code: `HTTP_${res.status}`, message: res.statusText };
      throw new HubError(err.code, err.message, err.details ?? null, res.status);
    }
    return body.data;
  }

  private url(path: string, query: Query = {}): string {
    const url = new URL(`${this.baseUrl.replace(/\/+$/, '')}${path}`);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url.toString();
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    return e.message;
  }
  return String(e);
}
