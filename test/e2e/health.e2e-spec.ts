import request from 'supertest';
import WebSocket from 'ws';
import { startFakeProvider } from '../support/fake-llm-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

describe('health and docs (open, no key)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('GET /healthz answers ok with a request id; task counts only for a key (docs/security.md)', async () => {
    const res = await request(t.url).get('/healthz').expect(200);
    expect(res.body).toMatchObject({ status: 'healthy', tasks: null });
    expect(res.body.uptime).toBeGreaterThan(0);
    expect(res.headers['x-request-id']).toMatch(/.+/);
    const keyed = await request(t.url).get('/healthz').set('Authorization', `Bearer ${t.keys.client}`).expect(200);
    expect(keyed.body).toMatchObject({ status: 'healthy', tasks: { running: 0, pending: 0, completed: 0 } });
  });

  it('GET /health reports the database component with its response time', async () => {
    const res = await request(t.url).get('/health').expect(200);
    expect(res.body.status).toBe('healthy');
    expect(res.body.components.database.healthy).toBe(true);
    expect(typeof res.body.components.database.response_time).toBe('number');
  });

  it('GET /health (seed 002) counts active connections, and shows cache and external services as not configured when none are', async () => {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws?token=${t.keys.client}`);
    await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
    const res = await request(t.url).get('/health').expect(200);
    expect(res.body.metrics.active_connections).toBeGreaterThanOrEqual(1);
    // A default hub (no REDIS_URL, no LLM_PROVIDERS): the components are there, healthy and not
    // configured, so a client reading them finds them; only the database decides the status.
    expect(res.body.status).toBe('healthy');
    const notConfigured = {
      status: 'not_configured',
      healthy: true,
      response_time: 0,
      last_checked: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    };
    expect(res.body.components.database).toMatchObject({ status: 'healthy', healthy: true });
    expect(res.body.components.cache).toEqual(notConfigured);
    expect(res.body.components.external_services).toEqual({ ...notConfigured, providers: [] });
    ws.close();
  });

  it('GET /health shows Redis as components.cache and the LLM providers as components.external_services', async () => {
    const provider = await startFakeProvider();
    const redis = process.env.REDIS_URL;
    const other = await startTestApp({
      ...(redis ? { REDIS_URL: redis } : {}),
      LLM_PROVIDERS: JSON.stringify([
        { name: 'up', base_url: provider.url, models: ['fake-model'] },
        { name: 'down', base_url: 'http://127.0.0.1:9/v1', models: ['fake-model'] },
      ]),
    });
    try {
      const res = await request(other.url).get('/health').expect(200);
      expect(res.body.components.external_services).toMatchObject({
        status: 'healthy',
        healthy: true,
        response_time: expect.any(Number),
        last_checked: expect.any(String),
      });
      expect(res.body.components.external_services.providers).toEqual([
        expect.objectContaining({ name: 'up', healthy: true }),
        expect.objectContaining({ name: 'down', healthy: false }),
      ]);
      if (redis) {
        expect(res.body.components.cache).toMatchObject({
          status: 'healthy',
          healthy: true,
          response_time: expect.any(Number),
        });
      } else {
        expect(res.body.components.cache).toMatchObject({ status: 'not_configured', healthy: true });
        process.stdout.write('\n[health] components.cache as Redis not checked: REDIS_URL is not set\n');
      }
    } finally {
      await other.close();
      await provider.close();
    }
  });

  it('echoes a caller-supplied X-Request-Id', async () => {
    const res = await request(t.url).get('/healthz').set('X-Request-Id', 'abc-123').expect(200);
    expect(res.headers['x-request-id']).toBe('abc-123');
  });

  it('serves the OpenAPI document and the Swagger UI', async () => {
    const json = await request(t.url).get('/docs-json').expect(200);
    expect(json.body.openapi).toMatch(/^3\./);
    expect(Object.keys(json.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/tasks',
        '/api/v1/tasks/next',
        '/api/v1/tasks/{id}/complete',
        '/api/v1/statistics',
        '/api/v1/services',
        '/api/v1/services/{id}/start',
        '/api/v1/health/services/{id}/history',
        '/api/v1/connections/{id}/disconnect',
        '/api/v1/stats/timeseries',
        '/api/v1/logs/search',
        '/api/v1/routing/rules',
      ]),
    );
    const ui = await request(t.url).get('/docs/').expect(200);
    expect(ui.text).toContain('swagger');
  });
});
