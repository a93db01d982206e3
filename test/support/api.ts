import { createHubClient, type HubClient, type HubSchemas } from '../../src/sdk/hub-client.js';
import type { TestApp } from './test-app.js';

/**
 * The SDK's typed client (openapi-fetch over the generated contract types) on a test app:
 * paths, bodies and answers are checked against openapi.json at compile time.
 * `const { data, error, response } = await hub.GET('/api/v1/tasks/{id}', { params: { path: { id } } })`.
 */
export function hubApi(t: TestApp, key: string | undefined): HubClient {
  return createHubClient({ baseUrl: t.url, apiKey: key });
}

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
    put: <T = Record<string, unknown>>(path: string, body?: unknown) => call<T>('PUT', path, body),
    delete: <T = Record<string, unknown>>(path: string) => call<T>('DELETE', path),
    patch: <T = Record<string, unknown>>(path: string, body?: unknown) => call<T>('PATCH', path, body),
  };
}

export type Api = ReturnType<typeof apiClient>;

/** The task view, as the contract (openapi.json) types it. */
export type Task = HubSchemas['TaskView'];
