/**
 * Seed 003 (agent-service manager) as a client of that document uses it: its own register
 * body, routing rule, error codes, proxy events and stats, against a real hub and real
 * WebSocket clients. Each block is one line of ../shared/CONFORMANCE.md "003".
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
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
  performance: { avg_response_time_ms: number | null; avg_health_check_ms: number | null };
  day_starts_at: string;
}

/**
 * An agent the test runs itself (registered as an external service): it keeps every text
 * frame each connection sends, answers each one with `{answer: n}` after `replyDelayMs`, and
 * accepts the proxy's upgrades (not the health checks') only after `acceptDelayMs`.
 */
class TestAgent {
  readonly received: string[][] = [];
  private readonly wss: WebSocketServer;

  private constructor(
    readonly port: number,
    wss: WebSocketServer,
  ) {
    this.wss = wss;
  }

  static async start(opts: { acceptDelayMs?: number; replyDelayMs?: number } = {}): Promise<TestAgent> {
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      verifyClient: (info, done) => {
        const proxied = info.req.headers['x-taskhub-connection-id'] !== undefined;
        setTimeout(() => done(true), proxied ? (opts.acceptDelayMs ?? 0) : 0);
      },
    });
    await new Promise((r) => wss.once('listening', r));
    const agent = new TestAgent((wss.address() as AddressInfo).port, wss);
    wss.on('connection', (ws: WebSocket, req) => {
      if (req.headers['x-taskhub-connection-id'] === undefined) return; // a health check
      const frames: string[] = [];
      agent.received.push(frames);
      ws.on('message', (data) => {
        frames.push(data.toString());
        const n = frames.length;
        setTimeout(() => ws.send(JSON.stringify({ answer: n })), opts.replyDelayMs ?? 0);
      });
    });
    return agent;
  }

  get endpoint(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((r) => this.wss.close(r));
  }
}

describe('seed 003 conformance: the document as its clients use it', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const sockets: WsClient[] = [];
  const agents: TestAgent[] = [];
  const testAgent = async (opts: { acceptDelayMs?: number; replyDelayMs?: number } = {}): Promise<TestAgent> => {
    const a = await TestAgent.start(opts);
    agents.push(a);
    return a;
  };
  /** Registers a TestAgent as an external service (routable at once); wrapping is the document's default. */
  const registerAgent = async (name: string, agent: TestAgent): Promise<ServiceView> => {
    const res = await admin.post(SERVICES, {
      name,
      endpoint: agent.endpoint,
      health_check: { type: 'ws', interval: 1, timeout: 2 },
    });
    expect(res.status).toBe(201);
    return (res.body as unknown as { service: ServiceView }).service;
  };

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
    await Promise.all(agents.splice(0).map((a) => a.close()));
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

    it('PORT_IN_USE compares addresses, not host strings: localhost:P is taken while 127.0.0.1:P is', async () => {
      const port = 18_081;
      const body = (name: string, host: string, p = port): Record<string, unknown> => ({
        ...DOCUMENT_REGISTER_BODY,
        name,
        host,
        port: p,
      });
      const first = await admin.post(SERVICES, body('loopback-agent', '127.0.0.1'));
      expect(first.status).toBe(201);

      const named = await admin.post(SERVICES, body('localhost-agent', 'localhost'));
      expect(named.status).toBe(409);
      expect(named.body).toMatchObject({
        success: false,
        error: expect.objectContaining({
          code: 'PORT_IN_USE',
          message: expect.stringContaining('loopback-agent'),
          details: expect.objectContaining({ port, host: '127.0.0.1', service_id: first.body.data.service_id }),
        }),
      });
      // Wildcards listen on every address: they overlap any host on that port, both ways.
      for (const host of ['0.0.0.0', '::', 'LOCALHOST']) {
        const r = await admin.post(SERVICES, body(`agent-${host.replace(/:/g, 'x')}`, host));
        expect([host, r.status, r.body.error?.code]).toEqual([host, 409, 'PORT_IN_USE']);
      }
      expect((await admin.post(SERVICES, body('wild-agent', '0.0.0.0', port + 1))).status).toBe(201);
      const under = await admin.post(SERVICES, body('under-wild', '127.0.0.1', port + 1));
      expect([under.status, under.body.error?.code]).toEqual([409, 'PORT_IN_USE']);
      // Another port, or a name that does not resolve (compared as a string), is free.
      expect((await admin.post(SERVICES, body('other-port', 'localhost', port + 2))).status).toBe(201);
      expect((await admin.post(SERVICES, body('unresolved', 'no-such-host.invalid'))).status).toBe(201);
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

    it('messages sent before routing finishes reach the agent wrapped like the later ones, in order (§2.2)', async () => {
      // The agent accepts the proxy's upgrade only after 400 ms: the client's first messages wait in the hub.
      const agent = await testAgent({ acceptDelayMs: 400 });
      await registerAgent('slow-accept-agent', agent);
      const c = await ws('service=slow-accept-agent');
      for (let i = 0; i < 5; i++) c.send(JSON.stringify({ n: i }), false);
      const routed = await c.event<{ connection_id: string; session_id: string }>('connection_routed');
      for (let i = 5; i < 8; i++) c.send(JSON.stringify({ n: i }), false);

      await eventually(async () => agent.received[0]?.length === 8);
      const got = agent.received[0].map((f) => JSON.parse(f) as Record<string, unknown>);
      expect(got.map((m) => (m.original_message as { n: number } | undefined)?.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      for (const m of got) {
        expect(m).toEqual({
          proxy_metadata: {
            connection_id: routed.connection_id,
            session_id: routed.session_id,
            target_service: 'slow-accept-agent',
            routing_strategy: 'least_connections',
            timestamp: expect.any(String),
          },
          original_message: { n: expect.any(Number) },
        });
      }
      // The timestamp is when the client sent it, so the early ones are not later than the others.
      const times = got.map((m) => Date.parse((m.proxy_metadata as { timestamp: string }).timestamp));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
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
      // The fail-over was a connection to the service it moved to, as the first was to the one it left.
      expect([sa.total_connections, sb.total_connections]).toEqual([1, 1]);
      expect(o.sessions).toEqual({ total_today: 1, active: 0, completed_today: 1 });
    });
  });

  describe('stats (§1.4)', () => {
    it('peak_today and per-service messages are kept over a hub restart; peak_today is per UTC day', async () => {
      const agent = await testAgent();
      const s = await registerAgent('counted-agent', agent);
      // Yesterday's peak is not today's.
      await t.db.query(
        `INSERT INTO agent_connection_peaks (tenant_id, day, peak) VALUES ('default', current_date - 1, 99), ('*', current_date - 1, 99)`,
      );
      // A hub whose sampler never runs while the test does: what survives its restart is what it stored itself.
      const hub = await startTestApp({ STATS_SAMPLE_INTERVAL_MS: '600000' }, { keepData: true });
      let restarted: TestApp | null = null;
      try {
        const clients = await Promise.all([0, 1, 2].map(() => ws('service=counted-agent', {}, hub)));
        for (const c of clients) await c.event('connection_routed');
        for (const c of clients) {
          c.send('{"ask":1}', false);
          await c.message();
        }
        const hubClient = apiClient(hub, hub.keys.client);
        expect((await overview(hubClient)).connections.peak_today).toBe(3);
        expect(
          ((await hubClient.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView).stats.messages,
        ).toBe(6);
        for (const c of clients) c.close();
        await eventually(async () => (await overview(hubClient)).connections.active === 0);
        await hub.close();

        restarted = await startTestApp({ STATS_SAMPLE_INTERVAL_MS: '600000' }, { keepData: true });
        const after = apiClient(restarted, restarted.keys.client);
        expect((await overview(after)).connections).toMatchObject({ total: 3, active: 0, peak_today: 3 });
        const view = ((await after.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView).stats;
        expect(view).toMatchObject({ total_connections: 3, messages: 6 });
        // The hub-wide peak (a global admin's view) too.
        expect((await overview(apiClient(restarted, restarted.keys.admin))).connections.peak_today).toBe(3);
      } finally {
        await restarted?.close();
      }
    });

    it('avg_response_time_ms is the agents’ answer time, per service and hub-wide; the health checks’ is avg_health_check_ms', async () => {
      await truncate(t.db, 'service_stat_samples'); // the last hour's answers of earlier tests' echo agents
      const agent = await testAgent({ replyDelayMs: 100 });
      const s = await registerAgent('slow-answer-agent', agent);
      const c = await ws('service=slow-answer-agent');
      await c.event('connection_routed');
      for (let i = 0; i < 3; i++) {
        c.send(JSON.stringify({ q: i }), false);
        expect(await c.message()).toEqual({ answer: i + 1 });
      }
      const perService = (await stats(s.service_id)).avg_response_time_ms;
      expect(perService).toBeGreaterThanOrEqual(100);
      expect(perService).toBeLessThan(1000);
      // Hub-wide, before and after the sampler stores it.
      const now = (await overview()).performance;
      expect(now.avg_response_time_ms).toBeGreaterThanOrEqual(100);
      expect(now.avg_response_time_ms).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 1200));
      const sampled = (await overview()).performance;
      expect(sampled.avg_response_time_ms).toBeGreaterThanOrEqual(100);
      expect(sampled.avg_response_time_ms).toBeLessThan(1000);
      // The health checks answer at once: their time is the other field.
      await eventually(async () => (await overview()).performance.avg_health_check_ms !== null);
      expect((await overview()).performance.avg_health_check_ms).toBeLessThan(100);
    });

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
