import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app.js';

describe('health and docs (open, no key)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('GET /healthz answers ok with a request id', async () => {
    const res = await request(t.url).get('/healthz').expect(200);
    expect(res.body).toMatchObject({ status: 'healthy', tasks: { running: 0, pending: 0, completed: 0 } });
    expect(res.body.uptime).toBeGreaterThan(0);
    expect(res.headers['x-request-id']).toMatch(/.+/);
  });

  it('GET /health reports the database component with its response time', async () => {
    const res = await request(t.url).get('/health').expect(200);
    expect(res.body.status).toBe('healthy');
    expect(res.body.components.database.healthy).toBe(true);
    expect(typeof res.body.components.database.response_time).toBe('number');
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
