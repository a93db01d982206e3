/**
 * Seed 003 (agent-service manager) as a client of that document uses it: its own register
 * body, routing rule, error codes, proxy events and stats, against a real hub and real
 * WebSocket clients. Each block is one line of ../shared/CONFORMANCE.md "003".
 */
import { ECHO_AGENT, eventually, type ServiceView, startEcho } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { jsonOf, WsClient } from '../support/ws-client.js';

const SERVICES = '/api/v1/services';

/** §1.1, verbatim. */
const DOCUMENT_REGISTER_BODY = {
  name: 'weather-agent',
  description: 'Weather information agent',
  agent_factory_path: './agents/weather_agent.py',
  host: 'localhost',
  port: 8081,
  tags: ['weather', 'information'],
  config: { max_sessions: 100, session_timeout: 1800, auto_restart: true, health_check_enabled: true },
};

/** §1.3, verbatim. */
const DOCUMENT_RULE = {
  name: 'VIP用户路由',
  priority: 10,
  conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
  target_strategy: 'least_connections',
  target_tags: ['high-performance'],
  enabled: true,
};

/** An echo agent whose GET /health the test can make fail (`__sick__`), checked over HTTP every second. */
const HTTP_HEALTH = { health_check: { type: 'http', path: '/health', interval: 1, timeout: 1 } };

interface Overview {
  connections: { total: number; active: number; peak_today: number };
  sessions: { total_today: number; active: number; completed_today: number };
  day_starts_at: string;
}

describe('seed 003 conformance: the document as its clients use it', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const sockets: WsClient[] = [];

  const ws = async (query: string, headers: Record<string, string> = {}, app: TestApp = t): Promise<WsClient> => {
    const c = await WsClient.open(
      `${app.url.replace('http', 'ws')}/ws?${query ? `${query}&` : ''}token=${app.keys.client}`,
      headers,
    );
    sockets.push(c);
    return c;
  };
  const overview = async (api: Api = client): Promise<Overview> =>
    (await api.get('/api/v1/stats/overview')).body as unknown as Overview;
  const stats = async (id: string): Promise<ServiceView['stats']> =>
    ((await client.get(`${SERVICES}/${id}`)).body.data as unknown as ServiceView).stats;

  beforeAll(async () => {
    t = await startTestApp({
      SERVICE_STOP_GRACE_MS: '1000',
      SERVICE_HEALTH_TICK_MS: '200',
      STATS_SAMPLE_INTERVAL_MS: '500',
    });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.close());
    const list = await admin.get<{ services: ServiceView[] }>(`${SERVICES}?limit=200`);
    for (const s of list.body.data.services) await admin.delete(`${SERVICES}/${s.service_id}`);
    await truncate(t.db, 'agent_services, routing_rules, agent_sessions');
  });
  afterAll(async () => {
    sockets.splice(0).forEach((s) => s.close());
    await t?.close();
  });

  describe('errors (§4.2)', () => {
    it('re-sending the document’s own register body answers 409 SERVICE_ALREADY_EXISTS, not PORT_IN_USE', async () => {
      const first = await admin.post(SERVICES, DOCUMENT_REGISTER_BODY);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({
        success: true,
        service_id: expect.any(String),
        message: 'Service registered successfully',
        endpoint: 'ws://localhost:8081',
      });

      const again = await admin.post(SERVICES, DOCUMENT_REGISTER_BODY);
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ success: false, error: { code: 'SERVICE_ALREADY_EXISTS' } });

      // Another name on the same claimed port is still PORT_IN_USE.
      const port = await admin.post(SERVICES, { ...DOCUMENT_REGISTER_BODY, name: 'weather-agent-2' });
      expect([port.status, port.body.error?.code]).toEqual([409, 'PORT_IN_USE']);
    });

    it('a bad request on the document’s routes is INVALID_REQUEST; canonical task routes keep VALIDATION_ERROR', async () => {
      const noName = await admin.post(SERVICES, { ...DOCUMENT_REGISTER_BODY, name: undefined });
      expect([noName.status, noName.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
      const badQuery = await client.get(`${SERVICES}?limit=many`);
      expect([badQuery.status, badQuery.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
      const badRule = await admin.post('/api/v1/routing/rules', {
        ...DOCUMENT_RULE,
        conditions: [{ field: 'header.x-user-tier', operator: 'resembles', value: 'vip' }],
      });
      expect([badRule.status, badRule.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);
      const badJson = await admin.post(SERVICES, '{"name": ');
      expect([badJson.status, badJson.body.error?.code]).toEqual([400, 'INVALID_REQUEST']);

      const task = await admin.post('/api/v1/tasks', { priority: 'whenever' });
      expect([task.status, task.body.error?.code]).toEqual([400, 'VALIDATION_ERROR']);
    });

    it('HEALTH_CHECK_FAILED is a health check that failed (POST /health/services/{id}/check)', async () => {
      const s = await startEcho(admin, 'echo-health', HTTP_HEALTH);
      const ok = await admin.post(`/api/v1/health/services/${s.service_id}/check`);
      expect([ok.status, ok.body.data.status]).toEqual([200, 'healthy']);

      const c = await ws('service=echo-health');
      await c.event('connection_routed');
      c.send('__sick__', false);
      await c.next((f) => jsonOf(f)?.sick !== undefined);

      const failed = await admin.post(`/api/v1/health/services/${s.service_id}/check`);
      expect(failed.status).toBe(503);
      expect(failed.body.error).toMatchObject({
        code: 'HEALTH_CHECK_FAILED',
        details: { service_id: s.service_id, health: { status: 'unhealthy', message: 'HTTP 503' } },
      });
      const history = await client.get<Record<string, unknown>>(
        `/api/v1/health/services/${s.service_id}/history?limit=1`,
      );
      expect((history.body as unknown as { history: { status: string }[] }).history[0].status).toBe('unhealthy');
    });
  });

  describe('WebSocket proxy (§2)', () => {
    it('a bare /ws matched by the document’s rule (header x-user-tier: vip) reaches the proxy; without it, the task stream', async () => {
      expect((await admin.post('/api/v1/routing/rules', DOCUMENT_RULE)).status).toBe(201);
      await startEcho(admin, 'fast-agent', { tags: ['high-performance'] });

      const vip = await ws('', { 'x-user-tier': 'vip' });
      expect(await vip.event('connection_routed')).toMatchObject({
        target_service: 'fast-agent',
        service_endpoint: expect.stringMatching(/^ws:\/\//),
        routing_strategy: 'least_connections',
        rule: 'VIP用户路由',
      });

      // Rules that would match any request (only negative, only task.* conditions) do not claim a bare /ws.
      for (const conditions of [
        [{ field: 'header.x-user-tier', operator: 'not_equals', value: 'vip' }],
        [{ field: 'task.type', operator: 'equals', value: 'x' }],
      ]) {
        expect(
          (
            await admin.post('/api/v1/routing/rules', {
              ...DOCUMENT_RULE,
              name: `catch-${conditions[0].operator}`,
              priority: 20,
              conditions,
            })
          ).status,
        ).toBe(201);
      }
      const plain = await ws('', { 'x-user-tier': 'standard' });
      const first = jsonOf(await plain.next());
      expect(first).toMatchObject({ type: 'connected' });
    });

    it('wraps client messages as {proxy_metadata, original_message} by default (§2.2)', async () => {
      const reg = await admin.post(SERVICES, {
        ...DOCUMENT_REGISTER_BODY,
        name: 'weather-meta',
        agent_factory_path: ECHO_AGENT,
        host: '127.0.0.1',
        port: 0,
        env: { ECHO_QUIET: '1' },
      });
      expect(reg.status).toBe(201);
      expect((await admin.post(`${SERVICES}/${reg.body.data.service_id as string}/start`)).status).toBe(200);

      const c = await ws('service=weather-meta');
      const routed = await c.event<{ connection_id: string }>('connection_routed');
      c.send(JSON.stringify({ type: 'chat', text: '北京天气' }), false);
      const echoed = jsonOf(await c.next((f) => jsonOf(f)?.proxy_metadata !== undefined));
      expect(echoed).toEqual({
        proxy_metadata: {
          connection_id: routed.connection_id,
          session_id: expect.any(String),
          target_service: 'weather-meta',
          routing_strategy: 'least_connections',
          timestamp: expect.any(String),
        },
        original_message: { type: 'chat', text: '北京天气' },
      });
    });

    it('an open but unhealthy service’s sessions fail over with service_switched {reason: "service_unhealthy"}', async () => {
      const a = await startEcho(admin, 'weather-agent-1', { tags: ['weather'], ...HTTP_HEALTH });
      const b = await startEcho(admin, 'weather-agent-2', { tags: ['weather'], ...HTTP_HEALTH });
      const c = await ws('tag=weather');
      const routed = await c.event<{ target_service: string; session_id: string }>('connection_routed');
      const [from, to] = routed.target_service === a.name ? [a, b] : [b, a];

      c.send('__sick__', false); // its /health fails from now on; its WebSocket stays open
      const switched = await c.event('service_switched', 10_000);
      expect(switched).toEqual({
        from_service: from.name,
        to_service: to.name,
        reason: 'service_unhealthy',
        session_preserved: true,
        session_id: routed.session_id,
      });
      expect(c.closed).toBeNull();
      c.send('after', false);
      await c.next((f) => f.data.toString().includes('after'));

      // Counters stay consistent after the fail-over, per service and hub-wide.
      c.close();
      await eventually(async () => (await overview()).sessions.active === 0);
      const [sa, sb, o] = [await stats(from.service_id), await stats(to.service_id), await overview()];
      for (const s of [sa, sb]) {
        expect(s.completed_sessions).toBeLessThanOrEqual(s.total_sessions);
        expect(s.total_sessions).toBe(s.active_sessions + s.completed_sessions);
      }
      expect(sa.total_sessions + sb.total_sessions).toBe(1);
      expect(o.sessions).toEqual({ total_today: 1, active: 0, completed_today: 1 });
    });
  });

  describe('stats (§1.4)', () => {
    it('a session held by a hub process that is gone (crashed) ends, and is counted completed at its service', async () => {
      const s = await startEcho(admin, 'weather-agent');
      await t.db.query(
        `INSERT INTO agent_sessions (session_id, service_id, open_connections, instance_id) VALUES ('held-by-dead-hub', $1, 1, 'no-such-hub')`,
        [s.service_id],
      );
      await eventually(async () => (await stats(s.service_id)).completed_sessions === 1);
      expect(await stats(s.service_id)).toMatchObject({ total_sessions: 1, active_sessions: 0, completed_sessions: 1 });
      expect((await overview()).sessions).toEqual({ total_today: 1, active: 0, completed_today: 1 });
    });

    it('session counters are stored: the same on every hub process, kept over a restart, *_today from UTC midnight', async () => {
      const s = await startEcho(admin, 'weather-agent');
      for (let i = 0; i < 3; i++) {
        const c = await ws('service=weather-agent');
        await c.event('connection_routed');
        c.close();
      }
      const open = await ws('service=weather-agent');
      await open.event('connection_routed');
      await eventually(async () => {
        const o = await overview();
        return o.sessions.completed_today === 3 && o.sessions.active === 1;
      });
      expect(await overview()).toMatchObject({
        sessions: { total_today: 4, active: 1, completed_today: 3 },
        connections: { total: 4, active: 1 },
      });
      // A session that ended before today's UTC midnight counts in the totals, not in today's.
      const midnight = new Date(new Date().setUTCHours(0, 0, 0, 0));
      await t.db.query(
        `INSERT INTO agent_sessions (session_id, service_id, open_connections, started_at, ended_at) VALUES ('yesterday', $1, 0, $2, $2)`,
        [s.service_id, new Date(midnight.getTime() - 3600_000)],
      );
      expect((await overview()).day_starts_at).toBe(midnight.toISOString());
      expect((await overview()).sessions).toEqual({ total_today: 4, active: 1, completed_today: 3 });

      // A second hub process on the same database reports the same numbers.
      const other = await startTestApp({ STATS_SAMPLE_INTERVAL_MS: '500' }, { keepData: true });
      try {
        const otherClient = apiClient(other, other.keys.client);
        expect((await overview(otherClient)).sessions).toEqual({ total_today: 4, active: 1, completed_today: 3 });
        const viaOther = ((await otherClient.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView)
          .stats;
        expect(viaOther).toMatchObject({
          total_connections: 4,
          active_connections: 1,
          total_sessions: 4,
          active_sessions: 1,
          completed_sessions: 3,
        });

        // Restart: the first hub goes away (its open session ends with it); the numbers stay.
        open.close();
        await t.close();
        await eventually(async () => (await overview(otherClient)).sessions.active === 0);
        expect((await overview(otherClient)).sessions).toEqual({ total_today: 4, active: 0, completed_today: 4 });
        t = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000', STATS_SAMPLE_INTERVAL_MS: '500' }, { keepData: true });
        admin = apiClient(t, t.keys.admin);
        client = apiClient(t, t.keys.client);
        expect((await overview()).sessions).toEqual({ total_today: 4, active: 0, completed_today: 4 });
        expect((await overview()).connections.total).toBe(4);
      } finally {
        await other.close();
      }
    });
  });
});
