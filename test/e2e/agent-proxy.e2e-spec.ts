import { randomBytes, randomUUID } from 'node:crypto';
import { eventually, registerEcho, type ServiceView, startEcho } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { jsonOf, WsClient } from '../support/ws-client.js';

const SERVICES = '/api/v1/services';

interface Routed {
  connection_id: string;
  session_id: string;
  target_service: string;
  service_endpoint: string;
  routing_strategy: string;
  rule: string | null;
}

describe('agent-service WebSocket proxy', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const sockets: WsClient[] = [];

  const wsUrl = (query: string): string => `${t.url.replace('http', 'ws')}/ws?${query}&token=${t.keys.client}`;
  const connect = async (query: string, headers: Record<string, string> = {}): Promise<WsClient> => {
    const c = await WsClient.open(wsUrl(query), headers);
    sockets.push(c);
    return c;
  };
  const routed = async (query: string, headers?: Record<string, string>): Promise<{ c: WsClient; r: Routed }> => {
    const c = await connect(query, headers);
    return { c, r: await c.event<Routed>('connection_routed') };
  };
  const view = async (id: string): Promise<ServiceView> =>
    (await client.get(`${SERVICES}/${id}`)).body.data as unknown as ServiceView;

  beforeAll(async () => {
    t = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000', STATS_SAMPLE_INTERVAL_MS: '200' });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.close());
    const list = await admin.get<{ services: ServiceView[] }>(`${SERVICES}?limit=200`);
    for (const s of list.body.data.services) await admin.delete(`${SERVICES}/${s.service_id}`);
    await truncate(t.db, 'agent_services, routing_rules');
  });
  afterAll(() => t.close());

  it('routes by service name and relays text, binary and 1 MB frames both ways', async () => {
    const s = await startEcho(admin, 'echo-one');
    const { c, r } = await routed('service=echo-one');
    expect(r).toMatchObject({
      target_service: 'echo-one',
      service_endpoint: s.endpoint,
      routing_strategy: 'least_connections',
      rule: null,
    });
    expect(r.connection_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await c.message()).toEqual({ hello: 'echo-one', session: r.session_id });

    c.send('{"say":"hi"}', false);
    expect(await c.message()).toEqual({ say: 'hi' });
    const small = randomBytes(1000);
    c.send(small);
    const back = await c.next((f) => f.binary);
    expect(back.data.equals(small)).toBe(true);
    const big = randomBytes(1024 * 1024);
    c.send(big);
    const bigBack = await c.next((f) => f.binary);
    expect(bigBack.data.length).toBe(big.length);
    expect(bigBack.data.equals(big)).toBe(true);

    const conns = (await client.get('/api/v1/connections?service_id=echo-one&status=active')).body as unknown as {
      connections: Record<string, unknown>[];
      total: number;
    };
    expect(conns.total).toBe(1);
    expect(conns.connections[0]).toMatchObject({
      connection_id: r.connection_id,
      session_id: r.session_id,
      target_service_id: s.service_id,
      status: 'active',
      client_ip: '127.0.0.1',
    });
    expect(conns.connections[0].bytes_received).toBe(12 + 1000 + 1024 * 1024);
    expect(conns.connections[0].bytes_sent as number).toBeGreaterThanOrEqual(12 + 1000 + 1024 * 1024);
    expect(conns.connections[0].message_count).toBe(7); // hello + 3 out + 3 back

    const detail = await view(s.service_id);
    expect(detail.stats).toMatchObject({
      total_connections: 1,
      active_connections: 1,
      active_sessions: 1,
      total_sessions: 1,
    });
  });

  it('does not lose or reorder frames under backpressure (40 MB queued at once)', async () => {
    await startEcho(admin, 'echo-bulk', { env: { ECHO_QUIET: '1' } });
    const { c } = await routed('service=echo-bulk');
    const frames = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1024 * 1024, i));
    frames.forEach((f) => c.send(f));
    for (let i = 0; i < frames.length; i++) {
      const f = await c.next((x) => x.binary, 30_000);
      expect(f.data.equals(frames[i])).toBe(true);
    }
  });

  it('closes only the connection that sends a frame over PROXY_MAX_FRAME_BYTES (1009)', async () => {
    await startEcho(admin, 'echo-limit', { env: { ECHO_QUIET: '1' } });
    const { c: big } = await routed('service=echo-limit');
    const { c: other } = await routed('service=echo-limit');
    big.send(Buffer.alloc(16 * 1024 * 1024 + 1));
    expect((await big.waitClosed()).code).toBe(1009);
    other.send('fine', false);
    expect(await other.message()).toBe('fine');
    const closed = (await client.get(`/api/v1/connections?status=closed&service_id=echo-limit`)).body as unknown as {
      total: number;
    };
    expect(closed.total).toBe(1);
  });

  it('fails over to a matching instance when the upstream process is killed, and the crashed one restarts', async () => {
    const a = await startEcho(admin, 'echo-a', { tags: ['echo'] });
    const b = await startEcho(admin, 'echo-b', { tags: ['echo'] });
    const { c, r } = await routed('tag=echo');
    await c.message(); // hello
    const [first, second] = r.target_service === 'echo-a' ? [a, b] : [b, a];

    process.kill(first.pid as number, 'SIGKILL');
    const switched = await c.event<Record<string, unknown>>('service_switched');
    expect(switched).toMatchObject({
      from_service: first.name,
      to_service: second.name,
      session_preserved: true,
      session_id: r.session_id,
    });
    expect(['service_crashed', 'service_unavailable']).toContain(switched.reason);
    expect(await c.message()).toEqual({ hello: second.name, session: r.session_id });
    c.send('still there?', false);
    expect(await c.message()).toBe('still there?');

    const restarted = await eventually(async () => {
      const v = await view(first.service_id);
      return v.status === 'running' && v.pid !== first.pid ? v : null;
    });
    expect(restarted.restart_count).toBe(1);
    const conns = (await client.get(`/api/v1/connections?status=active`)).body as unknown as {
      connections: { switches: number; target_service: string }[];
    };
    expect(conns.connections[0]).toMatchObject({ switches: 1, target_service: second.name });
  });

  it('a client of a named service without siblings waits for its auto-restart and is switched back', async () => {
    const s = await startEcho(admin, 'echo-solo');
    const { c } = await routed('service=echo-solo');
    await c.message();
    process.kill(s.pid as number, 'SIGKILL');
    const switched = await c.event<Record<string, unknown>>('service_switched');
    expect(switched).toMatchObject({ from_service: 'echo-solo', to_service: 'echo-solo', session_preserved: true });
    await c.message(); // hello from the new process
    c.send('after restart', false);
    expect(await c.message()).toBe('after restart');
  });

  it('with no healthy service left: error ROUTING_FAILED, then close', async () => {
    const s = await startEcho(admin, 'echo-last');
    const { c } = await routed('service=echo-last');
    await admin.post(`${SERVICES}/${s.service_id}/stop`);
    const error = await c.event<Record<string, unknown>>('error');
    expect(error).toMatchObject({
      code: 'ROUTING_FAILED',
      message: 'No healthy service available for routing',
      recoverable: false,
    });
    expect((await c.waitClosed()).code).toBe(1011);

    const unknown = await connect('service=does-not-exist');
    expect(await unknown.event('error')).toMatchObject({ code: 'ROUTING_FAILED', recoverable: false });
    await unknown.waitClosed();
    const noTag = await connect('tag=nobody');
    expect(await noTag.event('error')).toMatchObject({ code: 'ROUTING_FAILED' });
  });

  it('enforces max_sessions: the connection past it gets INSUFFICIENT_RESOURCES', async () => {
    await startEcho(admin, 'echo-small', { config: { max_sessions: 2, start_timeout: 10 } });
    await routed('service=echo-small');
    await routed('service=echo-small');
    const third = await connect('service=echo-small');
    expect(await third.event('error')).toMatchObject({ code: 'INSUFFICIENT_RESOURCES', recoverable: true });
    expect((await third.waitClosed()).code).toBe(1013);
  });

  it('least_connections spreads 20 concurrent clients evenly', async () => {
    const names = ['lc-1', 'lc-2', 'lc-3', 'lc-4'];
    for (const n of names) await startEcho(admin, n, { tags: ['lc'], env: { ECHO_QUIET: '1' } });
    const all = await Promise.all(Array.from({ length: 20 }, () => routed('tag=lc&routing_hint=least_connections')));
    const counts: Record<string, number> = {};
    for (const { r } of all) counts[r.target_service] = (counts[r.target_service] ?? 0) + 1;
    expect(counts).toEqual({ 'lc-1': 5, 'lc-2': 5, 'lc-3': 5, 'lc-4': 5 });
    expect(all.every(({ r }) => r.routing_strategy === 'least_connections')).toBe(true);
  });

  it('routing rules pick services by header; no match falls back to the default strategy', async () => {
    await startEcho(admin, 'fast', { tags: ['chat', 'high-performance'], env: { ECHO_QUIET: '1' } });
    await startEcho(admin, 'plain', { tags: ['chat'], env: { ECHO_QUIET: '1' } });
    const rule = await admin.post('/api/v1/routing/rules', {
      name: 'VIP用户路由',
      priority: 10,
      conditions: [{ field: 'header.x-user-tier', operator: 'equals', value: 'vip' }],
      target_strategy: 'round_robin',
      target_tags: ['high-performance'],
    });
    expect(rule.status).toBe(201);
    for (let i = 0; i < 4; i++) {
      const { r } = await routed('tag=chat', { 'X-User-Tier': 'vip' });
      expect(r).toMatchObject({ target_service: 'fast', routing_strategy: 'round_robin', rule: 'VIP用户路由' });
    }
    // Without the header no rule matches: the default least_connections sends both to `plain`,
    // since `fast` still holds the four VIP connections.
    const others = await Promise.all([routed('tag=chat'), routed('tag=chat')]);
    expect(others.map(({ r }) => [r.rule, r.routing_strategy, r.target_service])).toEqual([
      [null, 'least_connections', 'plain'],
      [null, 'least_connections', 'plain'],
    ]);

    // A rule naming a service by query parameter.
    await admin.post('/api/v1/routing/rules', {
      name: 'beta',
      priority: 20,
      conditions: [{ field: 'query.channel', operator: 'in', value: ['beta', 'canary'] }],
      target_service: 'plain',
    });
    const { r } = await routed('tag=chat&channel=canary', { 'X-User-Tier': 'vip' });
    expect(r).toMatchObject({ target_service: 'plain', rule: 'beta' });
  });

  it('routes by tag, and a session_id reconnect reaches the same service while it is healthy', async () => {
    await startEcho(admin, 'news-1', { tags: ['news'], env: { ECHO_QUIET: '1' } });
    await startEcho(admin, 'news-2', { tags: ['news'], env: { ECHO_QUIET: '1' } });
    await startEcho(admin, 'weather', { tags: ['weather'], env: { ECHO_QUIET: '1' } });
    for (let i = 0; i < 4; i++) {
      const { r } = await routed('tag=news&routing_hint=round_robin');
      expect(r.target_service).toMatch(/^news-/);
    }
    const session = randomUUID();
    const first = await routed(`tag=news&session_id=${session}&routing_hint=random`);
    expect(first.r.session_id).toBe(session);
    first.c.close();
    await first.c.waitClosed();
    for (let i = 0; i < 5; i++) {
      const again = await routed(`tag=news&session_id=${session}&routing_hint=random`);
      expect(again.r.target_service).toBe(first.r.target_service);
      again.c.close();
      await again.c.waitClosed();
    }
  });

  it('disconnects by API with a notification, broadcasts management notifications, and rejects unknown ids', async () => {
    const s = await startEcho(admin, 'echo-admin', { env: { ECHO_QUIET: '1' } });
    const one = await routed('service=echo-admin');
    const two = await routed('service=echo-admin');

    const notified = await admin.post<Record<string, unknown>>(`${SERVICES}/${s.service_id}/notify`, {
      type: 'maintenance_window',
      message: 'Service will be restarted in 5 minutes',
      severity: 'warning',
      countdown_seconds: 300,
    });
    expect(notified.status).toBe(200);
    expect((notified.body as unknown as { delivered: number }).delivered).toBe(2);
    for (const { c } of [one, two]) {
      expect(await c.event('management_notification')).toEqual({
        type: 'maintenance_window',
        message: 'Service will be restarted in 5 minutes',
        severity: 'warning',
        countdown_seconds: 300,
      });
    }

    const res = await admin.post<Record<string, unknown>>(`/api/v1/connections/${one.r.connection_id}/disconnect`, {
      reason: 'maintenance',
      notify_client: true,
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      connection_id: one.r.connection_id,
      status: 'closed',
      close_reason: 'disconnected: maintenance',
    });
    expect(await one.c.event('management_notification')).toMatchObject({ type: 'disconnect', message: 'maintenance' });
    expect(await one.c.waitClosed()).toEqual({ code: 4000, reason: 'maintenance' });

    const active = (await client.get(`/api/v1/connections?service_id=${s.service_id}&status=active`))
      .body as unknown as { total: number };
    expect(active.total).toBe(1);
    const closed = (await client.get(`/api/v1/connections?status=closed`)).body as unknown as {
      connections: { connection_id: string }[];
    };
    expect(closed.connections.map((c) => c.connection_id)).toContain(one.r.connection_id);

    const again = await admin.post(`/api/v1/connections/${one.r.connection_id}/disconnect`, {});
    expect(again.status).toBe(404);
    expect(again.body.error?.code).toBe('CONNECTION_NOT_FOUND');
    expect((await admin.post(`/api/v1/connections/not-a-uuid/disconnect`, {})).body.error?.details?.field).toBe('id');
    expect(
      (await admin.post(`/api/v1/connections/${two.r.connection_id}/disconnect`, { notify_client: 'yes' })).status,
    ).toBe(400);
    expect((await client.post(`/api/v1/connections/${two.r.connection_id}/disconnect`, {})).status).toBe(403);
  });

  it('takes an unhealthy service out of routing until its health check passes again', async () => {
    const check = { type: 'http', path: '/health', interval: 1, timeout: 1 };
    const sick = await startEcho(admin, 'maybe-sick', { tags: ['hc'], env: { ECHO_QUIET: '1' }, health_check: check });
    await startEcho(admin, 'always-fine', { tags: ['hc'], env: { ECHO_QUIET: '1' }, health_check: check });
    const putConfig = (body: unknown) =>
      fetch(`${t.url}${SERVICES}/${sick.service_id}/config`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${t.keys.admin}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const healthIs = (status: string) =>
      eventually(
        async () =>
          ((await client.get(`/api/v1/health/services/${sick.service_id}`)).body as unknown as { status: string })
            .status === status,
      );

    expect((await putConfig({ health_check: { path: '/broken' } })).status).toBe(200); // the agent answers 404 there
    await healthIs('unhealthy');
    for (let i = 0; i < 4; i++)
      expect((await routed('tag=hc&routing_hint=round_robin')).r.target_service).toBe('always-fine');
    const direct = await connect('service=maybe-sick');
    expect(await direct.event('error')).toMatchObject({ code: 'ROUTING_FAILED' });

    await putConfig({ health_check: { path: '/health' } });
    await healthIs('healthy');
    expect((await routed('service=maybe-sick')).r.target_service).toBe('maybe-sick');
    const history = (await client.get(`/api/v1/health/services/${sick.service_id}/history?limit=100`))
      .body as unknown as { history: { status: string; message: string | null }[] };
    expect(history.history.some((h) => h.status === 'unhealthy' && h.message === 'HTTP 404')).toBe(true);
  });

  it('takes the proxy parameters from X- headers as well as the query', async () => {
    await startEcho(admin, 'hdr-a', { tags: ['hdr'], env: { ECHO_QUIET: '1' } });
    await startEcho(admin, 'hdr-b', { tags: ['hdr'], env: { ECHO_QUIET: '1' } });
    const c = await WsClient.open(`${t.url.replace('http', 'ws')}/ws`, {
      Authorization: `Bearer ${t.keys.client}`,
      'X-Service': 'hdr-b',
    });
    sockets.push(c);
    expect(await c.event('connection_routed')).toMatchObject({ target_service: 'hdr-b' });
    const byTag = await WsClient.open(`${t.url.replace('http', 'ws')}/ws`, {
      Authorization: `Bearer ${t.keys.client}`,
      'X-Tag': 'hdr',
      'X-Routing-Hint': 'hash',
      'X-Session-Id': 'sess-1',
    });
    sockets.push(byTag);
    expect(await byTag.event('connection_routed')).toMatchObject({ routing_strategy: 'hash', session_id: 'sess-1' });
  });

  it('refuses unauthenticated proxy connections', async () => {
    await startEcho(admin, 'echo-auth', { env: { ECHO_QUIET: '1' } });
    await expect(WsClient.open(`${t.url.replace('http', 'ws')}/ws?service=echo-auth`)).rejects.toThrow('HTTP 401');
    await expect(WsClient.open(`${t.url.replace('http', 'ws')}/ws?service=echo-auth&token=wrong`)).rejects.toThrow(
      'HTTP 401',
    );
    const { c } = await routed('service=echo-auth');
    c.send('ok', false);
    expect(await c.message()).toBe('ok');
  });

  it('counts connections, sessions and messages into stats overview and stored time series', async () => {
    const s = await startEcho(admin, 'echo-stats', { env: { ECHO_QUIET: '1' } });
    const clients = await Promise.all([
      routed('service=echo-stats'),
      routed('service=echo-stats'),
      routed('service=echo-stats'),
    ]);
    for (const { c } of clients) {
      c.send('ping', false);
      expect(await c.message()).toBe('ping');
    }
    clients[0].c.close();
    await clients[0].c.waitClosed();
    const overview = await eventually(async () => {
      const o = (await client.get('/api/v1/stats/overview')).body as unknown as Record<string, Record<string, number>>;
      return o.connections.active === 2 ? o : null;
    });
    expect(overview.services).toMatchObject({ running: 1 });
    expect(overview.connections.total).toBeGreaterThanOrEqual(3);
    expect(overview.sessions).toMatchObject({ active: 2 });
    expect(overview.sessions.completed_today).toBeGreaterThanOrEqual(1);
    expect(overview.resources.total_memory_mb).toBeGreaterThan(1);
    expect(overview.performance.throughput_per_minute).toBeGreaterThan(0);
    expect(typeof overview.performance.avg_response_time_ms).toBe('number');

    const series = await eventually(async () => {
      const r = (
        await client.get(
          `/api/v1/stats/timeseries?metric=connections&period=10m&interval=1s&service_id=${s.service_id}`,
        )
      ).body as unknown as {
        metric: string;
        data: { timestamp: string; value: number }[];
      };
      return r.data.some((p) => p.value === 2) ? r : null;
    });
    expect(series.metric).toBe('connections');
    expect(series.data.every((p) => !Number.isNaN(Date.parse(p.timestamp)))).toBe(true);
    // Waited for, not read once: the `connections = 2` sample above may be one taken while the third client
    // was still being routed, before any message was relayed (CI saw 0 here once).
    const relayed = await eventually(async () => {
      const messages = (await client.get(`/api/v1/stats/timeseries?metric=messages&period=1h&interval=1h`))
        .body as unknown as { data: { value: number }[] };
      const sum = messages.data.reduce((a, p) => a + p.value, 0);
      return sum >= 6 ? sum : null;
    });
    expect(relayed).toBeGreaterThanOrEqual(6);

    const bad = await client.get('/api/v1/stats/timeseries?metric=bogus');
    expect(bad.body.error?.details?.field).toBe('metric');
    expect(
      (await client.get('/api/v1/stats/timeseries?metric=connections&period=1h&interval=1x')).body.error?.details
        ?.field,
    ).toBe('interval');
    expect(
      (await client.get('/api/v1/stats/timeseries?metric=connections&period=1h&interval=2h')).body.error?.details
        ?.field,
    ).toBe('interval');
    expect(
      (await client.get('/api/v1/stats/timeseries?metric=connections&period=1h&interval=1s')).body.error?.details
        ?.message,
    ).toMatch(/at most 2000 points/);
  });

  it('wraps client text frames as {proxy_metadata, original_message} for a service that asks for it', async () => {
    await startEcho(admin, 'echo-meta', {
      env: { ECHO_QUIET: '1' },
      config: { proxy_metadata: true, start_timeout: 10 },
    });
    const { c, r } = await routed('service=echo-meta');
    c.send('{"q":"weather?"}', false);
    const echoed = jsonOf(await c.next((f) => !f.binary && jsonOf(f)?.proxy_metadata !== undefined));
    expect(echoed).toMatchObject({
      proxy_metadata: {
        connection_id: r.connection_id,
        target_service: 'echo-meta',
        routing_strategy: 'least_connections',
      },
      original_message: { q: 'weather?' },
    });
  });

  it('registering does not route to a stopped service', async () => {
    await registerEcho(admin, 'echo-never-started');
    const c = await connect('service=echo-never-started');
    expect(await c.event('error')).toMatchObject({ code: 'ROUTING_FAILED', recoverable: false });
  });
});
