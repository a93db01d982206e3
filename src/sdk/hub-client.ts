import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './http/openapi-types.js';

/** The hub's REST surface as typed by `openapi.json` (generated: `npm run openapi`). */
export type HubPaths = paths;
/** Request and response models by their OpenAPI names, e.g. `HubSchemas['TaskView']`. */
export type HubSchemas = components['schemas'];
export type HubClient = Client<paths>;

export interface HubClientOptions {
  /** e.g. `http://127.0.0.1:3000` (no trailing `/api/v1`: paths are absolute). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  fetch?: ClientOptions['fetch'];
}

/**
 * A typed client for every route in the contract (openapi-fetch): paths, parameters, bodies
 * and answers are checked against `openapi.json` at compile time.
 *
 * ```ts
 * const hub = createHubClient({ baseUrl, apiKey });
 * const { data, error } = await hub.POST('/api/v1/tasks', { body: { prompt: 'hi' } });
 * data?.data.task_id; // the envelope's data is a TaskView
 * ```
 */
export function createHubClient(options: HubClientOptions): HubClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { ...options.headers, ...(options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {}) },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

/** What a canonical route answers inside the envelope, e.g. `EnvelopeData<'/api/v1/tasks/{id}', 'get'>`. */
export type EnvelopeData<
  P extends keyof paths,
  M extends keyof paths[P] & ('get' | 'post' | 'put' | 'patch' | 'delete'),
> = paths[P][M] extends { responses: infer R }
  ? {
      [S in keyof R]: S extends 200 | 201 | 202
        ? R[S] extends { content: { 'application/json': { data: infer D } } }
          ? D
          : never
        : never;
    }[keyof R]
  : never;
