import type { TestApp } from './test-app.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    success: boolean;
    data: T;
    error: { code: string; message: string; details?: Record<string, unknown> } | null;
    timestamp: string;
    request_id: string;
  };
}

/** A tiny fetch client with a key, for tests that fire many requests at once. */
export function apiClient(t: TestApp, key: string | undefined) {
  async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: {
        ...(key ? { Authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  }
  return {
    get: <T = Record<string, unknown>>(path: string, headers?: Record<string, string>) =>
      call<T>('GET', path, undefined, headers),
    post: <T = Record<string, unknown>>(path: string, body?: unknown, headers?: Record<string, string>) =>
      call<T>('POST', path, body, headers),
    delete: <T = Record<string, unknown>>(path: string) => call<T>('DELETE', path),
  };
}

export type Api = ReturnType<typeof apiClient>;

/** Task view fields the tests read. */
export interface Task {
  task_id: string;
  status: string;
  state: string;
  prompt: string | null;
  priority: string;
  tags: string[];
  work_directory: string | null;
  worker_id: string | null;
  node_id: string | null;
  attempt: number;
  retry_count: number;
  max_retries: number;
  progress: number;
  result: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  messages: { role: string; content: string }[];
  metadata: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  cancelled_at: string | null;
  last_retry_at: string | null;
  run_at: string | null;
  lease_expires_at: string | null;
  reason: string | null;
}
