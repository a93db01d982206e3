import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ModulesContainer } from '@nestjs/core';
import {
  GLOBAL_ADMIN_ROUTE,
  METRICS_TOKEN_ROUTE,
  PUBLIC_ROUTE,
  REQUIRED_ROLES,
} from '../../src/modules/auth/auth.decorators.js';
import { apiClient } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** `METHOD /path` of every route the app serves, with who may call it: `public` or its roles. */
function routeTable(t: TestApp): Record<string, string> {
  const table: Record<string, string> = {};
  for (const mod of t.app.get(ModulesContainer).values()) {
    for (const wrapper of mod.controllers.values()) {
      const controller = wrapper.metatype as (new () => object) | null;
      if (!controller) continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = (controller.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const path = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        if (path === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
        const meta = <T>(key: string): T | undefined =>
          (Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, controller)) as T | undefined;
        const who = meta<boolean>(PUBLIC_ROUTE)
          ? 'public'
          : meta<boolean>(GLOBAL_ADMIN_ROUTE)
            ? 'global admin'
            : (meta<string[]>(REQUIRED_ROLES)?.join(',') ?? 'UNDECLARED') +
              (meta<boolean>(METRICS_TOKEN_ROUTE) ? ' or METRICS_TOKEN' : '');
        for (const p of [path].flat())
          table[`${method} /${[base, p].filter((s) => s && s !== '/').join('/')}`.replace(/\/+/g, '/')] = who;
      }
    }
  }
  return table;
}

/**
 * Who may call each route today (admin passes every role check). A new route, or a changed
 * permission, must change this table too: that is the point.
 */
const EXPECTED: Record<string, string> = {
  'DELETE /api/v1/api-keys/:id': 'admin',
  'DELETE /api/v1/nodes/:id': 'admin',
  'DELETE /api/v1/plugins/:name': 'admin',
  'DELETE /api/v1/routing/rules/:id': 'admin',
  'DELETE /api/v1/concurrency/:key': 'admin',
  'DELETE /api/v1/schedules/:id': 'client',
  'DELETE /api/v1/services/:id': 'admin',
  'DELETE /api/v1/tasks/:id': 'client',
  'DELETE /api/v1/tenants/:id': 'admin',
  'DELETE /tasks/:id': 'client',
  'DELETE /v1/config/:key': 'global admin',
  'DELETE /v1/nodes/:id': 'admin',
  'GET /': 'public',
  'GET /api/devices': 'client,worker',
  'GET /api/task/:id/status': 'client,worker',
  'GET /api/tasks': 'client,worker',
  'GET /api/v1/api-keys': 'admin',
  'GET /api/v1/connections': 'client,worker',
  'GET /api/v1/health/services/:id': 'client,worker',
  'GET /api/v1/health/services/:id/history': 'client,worker',
  'GET /api/v1/llm/status': 'admin',
  'GET /api/v1/llm/usage': 'client,worker',
  'GET /api/v1/logs': 'admin',
  'GET /api/v1/logs/search': 'client,worker',
  'GET /api/v1/logs/services/:id': 'client,worker',
  'GET /api/v1/nodes': 'client,worker',
  'GET /api/v1/nodes/:id': 'client,worker',
  'GET /api/v1/plugins': 'admin',
  'GET /api/v1/plugins/:name': 'admin',
  'GET /api/v1/routing/rules': 'client,worker',
  'GET /api/v1/concurrency': 'client,worker',
  'GET /api/v1/concurrency/:key': 'client,worker',
  'GET /api/v1/routing/rules/:id': 'client,worker',
  'GET /api/v1/rollouts': 'client,worker',
  'GET /api/v1/rollouts/:id': 'client,worker',
  'GET /api/v1/schedules': 'client,worker',
  'GET /api/v1/schedules/:id': 'client,worker',
  'GET /api/v1/services': 'client,worker',
  'GET /api/v1/services/:id': 'client,worker',
  'GET /api/v1/statistics': 'client,worker',
  'GET /api/v1/stats/overview': 'client,worker',
  'GET /api/v1/stats/timeseries': 'client,worker',
  'GET /api/v1/tasks': 'client,worker',
  'GET /api/v1/tasks/:id': 'client,worker',
  'GET /api/v1/tasks/:id/logs': 'client,worker',
  'GET /api/v1/tasks/next': 'worker',
  'GET /api/v1/tenants': 'admin',
  'GET /api/v1/tenants/:id': 'admin',
  'GET /health': 'public',
  'GET /dashboard': 'public',
  'GET /dashboard/assets/:file': 'public',
  'GET /healthz': 'public',
  'GET /metrics': 'client,worker or METRICS_TOKEN',
  'GET /status': 'public',
  'GET /tasks': 'client',
  'GET /tasks/:id': 'client',
  'GET /tasks/:id/logs': 'client',
  'GET /v1/config': 'admin',
  'GET /v1/config/:key': 'admin',
  'GET /v1/config/llm': 'admin',
  'GET /v1/models': 'client,worker',
  'GET /v1/nodes': 'client,worker',
  'GET /v1/nodes/:id': 'client,worker',
  'GET /v1/tools': 'client,worker',
  'PATCH /api/v1/api-keys/:id/limits': 'admin',
  'PATCH /api/v1/plugins/:name': 'admin',
  'PATCH /api/v1/schedules/:id': 'client',
  'PATCH /api/v1/tenants/:id': 'admin',
  'PATCH /v1/config': 'global admin',
  'POST /api/dispatch-task': 'client',
  'POST /api/v1/api-keys': 'admin',
  'POST /api/v1/connections/:id/disconnect': 'admin',
  'POST /api/v1/health/services/:id/check': 'client,worker',
  'POST /api/v1/nodes/:id/drain': 'admin',
  'POST /api/v1/nodes/:id/undrain': 'admin',
  'POST /api/v1/plugins': 'admin',
  'POST /api/v1/plugins/:name/rotate': 'admin',
  'POST /api/v1/routing/rules': 'admin',
  'POST /api/v1/routing/rules/evaluate': 'client,worker',
  'POST /api/v1/rollouts': 'client',
  'POST /api/v1/rollouts/:id/cancel': 'client',
  'POST /api/v1/schedules': 'client',
  'POST /api/v1/services': 'admin',
  'POST /api/v1/services/:id/notify': 'admin',
  'POST /api/v1/services/:id/restart': 'admin',
  'POST /api/v1/services/:id/start': 'admin',
  'POST /api/v1/services/:id/stop': 'admin',
  'POST /api/v1/tasks': 'client',
  'POST /api/v1/tenants': 'admin',
  'POST /api/v1/tasks/:id/acquire': 'worker',
  'POST /api/v1/tasks/:id/cancel': 'client',
  'POST /api/v1/tasks/:id/complete': 'worker',
  'POST /api/v1/tasks/:id/fail': 'worker',
  'POST /api/v1/tasks/:id/heartbeat': 'worker',
  'POST /api/v1/tasks/:id/progress': 'worker',
  'POST /api/v1/tasks/:id/reply': 'client',
  'POST /api/v1/tasks/:id/retry': 'client',
  'POST /api/v1/tasks/batch': 'client',
  'POST /plugin-callback/:plugin/:taskId': 'public',
  'POST /shutdown': 'global admin',
  'POST /tasks': 'client',
  'POST /tasks/:id/reply': 'client',
  'POST /v1/chat/completions': 'client,worker',
  'POST /v1/interrupt': 'client,worker',
  'POST /v1/nodes/:id/drain': 'admin',
  'POST /v1/nodes/:id/undrain': 'admin',
  'PUT /api/v1/routing/rules/:id': 'admin',
  'PUT /api/v1/concurrency/:key': 'admin',
  'PUT /api/v1/services/:id/config': 'admin',
  'PUT /v1/config/llm': 'global admin',
};

describe('auth: every route says who may call it', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('declares @Public() or its roles on every route, and they are the expected ones', () => {
    const table = routeTable(t);
    expect(Object.entries(table).filter(([, who]) => who === 'UNDECLARED')).toEqual([]);
    expect(Object.keys(table).length).toBeGreaterThan(50);
    expect(table).toEqual(EXPECTED);
  });

  it("@Authenticated('admin') is admin only; a role list lets those roles in too", async () => {
    const as = (key: string) => apiClient(t, key);
    // admin only
    expect((await as(t.keys.client).get('/api/v1/api-keys')).status).toBe(403);
    expect((await as(t.keys.worker).get('/api/v1/api-keys')).status).toBe(403);
    expect((await as(t.keys.admin).get('/api/v1/api-keys')).status).toBe(200);
    const refused = await as(t.keys.client).get('/v1/config');
    expect(refused.body.error).toMatchObject({ code: 'FORBIDDEN', message: 'This action needs role admin' });
    // client only
    expect((await as(t.keys.worker).post('/api/v1/tasks', { prompt: 'x' })).status).toBe(403);
    expect((await as(t.keys.client).post('/api/v1/tasks', { prompt: 'x' })).status).toBe(201);
    expect((await as(t.keys.admin).post('/api/v1/tasks', { prompt: 'x' })).status).toBe(201);
    // client or worker
    expect((await as(t.keys.worker).get('/api/v1/nodes')).status).toBe(200);
    expect((await as(t.keys.client).get('/api/v1/nodes')).status).toBe(200);
  });
});
