/** Same-origin calls to the hub's API with the dashboard's key. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Body = Record<string, unknown>;

let key = '';
let onUnauthorized: () => void = () => undefined;

export function useKey(k: string, unauthorized: () => void): void {
  key = k;
  onUnauthorized = unauthorized;
}

/** The parsed body (the envelope's `data` for canonical routes; the whole body for others). */
export async function call<T = Body>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Body;
  try {
    parsed = text ? (JSON.parse(text) as Body) : {};
  } catch {
    parsed = { message: text };
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    // Canonical: {error: {code, message}}; OpenAI shape on /v1: {error: {type, code, message}}.
    const err = (parsed.error ?? {}) as { code?: string; message?: string };
    throw new ApiError(res.status, err.code ?? String(res.status), err.message ?? res.statusText);
  }
  // Seed 003 routes put their fields beside the envelope and repeat them in `data`.
  return ('success' in parsed && 'data' in parsed ? parsed.data : parsed) as T;
}

export const get = <T = Body>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T = Body>(path: string, body: unknown = {}): Promise<T> => call<T>('POST', path, body);

/** true/false from a probe of an admin-only route; the answer decides which buttons to show. */
export async function probeAdmin(): Promise<boolean> {
  try {
    await get('/api/v1/api-keys');
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return false;
    throw e;
  }
}

export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
