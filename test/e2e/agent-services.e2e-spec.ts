import { createServer, type Server } from 'node:net';
import { alive, ECHO_AGENT, eventually, registerEcho, type ServiceView, startEcho } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

const SERVICES = '/api/v1/services';
const MISSING = '00000000-0000-4000-8000-000000000000';

describe('agent services: registry, lifecycle, health, logs', () => {
  let t: TestApp;
  let admin: Api;
  let client: Api;
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${t.url}${path}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${t.keys.admin}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown> & {
        data: ServiceView;
        error: { code: string; details?: Record<string, unknown> };
      },
    };
  };

  beforeAll(async () => {
    t = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000' });
    admin = apiClient(t, t.keys.admin);
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    const list = await admin.get<{ services: ServiceView[] }>(`${SERVICES}?limit=200`);
    for (const s of list.body.data.services) await admin.delete(`${SERVICES}/${s.service_id}`);
    await truncate(t.db, 'agent_services');
  });
  afterAll(() => t.close());

  it('registers with the seed shape, lists with tag/status filters and pages, shows detail', async () => {
    const res = await admin.post(SERVICES, {
      name: 'weather-agent',
      description: 'Weather information agent',
      agent_factory_path: ECHO_AGENT,
      host: '127.0.0.1',
      port: 0,
      tags: ['weather', 'information'],
      config: { max_sessions: 100, session_timeout: 1800, auto_restart: true, health_check_enabled: true },
    });
    expect(res.status).toBe(201);
    const body = res.body as unknown as Record<string, unknown>;
    // Seed 003 fields at the top level, the canonical envelope beside them.
    expect(body).toMatchObject({ success: true, message: 'Service registered successfully', endpoint: null });
    expect(body.service_id).toMatch(/^[0-9a-f-]{36}$/);
    expect((body.data as Record<string, unknown>).service_id).toBe(body.service_id);

    await registerEcho(admin, 'news-agent', { tags: ['news'] });
    await registerEcho(admin, 'sports-agent', { tags: ['news', 'sports'] });

    const all = await client.get<{ services: ServiceView[] }>(`${SERVICES}?limit=2&offset=0`);
    const allBody = all.body as unknown as { services: ServiceView[]; total: number; page: Record<string, unknown> };
    expect(all.status).toBe(200);
    expect(allBody.total).toBe(3);
    expect(allBody.page).toEqual({ limit: 2, offset: 0, has_next: true });
    expect(allBody.services.map((s) => s.name)).toEqual(['weather-agent', 'news-agent']);

    const news = (await client.get(`${SERVICES}?tag=news`)).body as unknown as {
      services: ServiceView[];
      total: number;
    };
    expect(news.services.map((s) => s.name).sort()).toEqual(['news-agent', 'sports-agent']);
    const running = (await client.get(`${SERVICES}?status=running`)).body as unknown as { total: number };
    expect(running.total).toBe(0);

    const detail = (await client.get(`${SERVICES}/weather-agent`)).body as unknown as ServiceView & {
      description: string;
    };
    expect(detail).toMatchObject({
      service_id: body.service_id,
      name: 'weather-agent',
      description: 'Weather information agent',
      status: 'stopped',
      tags: ['weather', 'information'],
      config: { max_sessions: 100, session_timeout: 1800, auto_restart: true, health_check_enabled: true },
      health: { status: 'unknown', last_check: null },
    });
    expect(detail.stats).toMatchObject({
      total_connections: 0,
      active_connections: 0,
      active_sessions: 0,
      error_count: 0,
    });
    const byId = (await client.get(`${SERVICES}/${body.service_id as string}`)).body as unknown as ServiceView;
    expect(byId.name).toBe('weather-agent');
  });

  it('starts a real process, checks its health, stops it with SIGTERM, restarts it', async () => {
    const s = await startEcho(admin, 'echo-life');
    expect(s.status).toBe('running');
    expect(s.pid).toBeGreaterThan(0);
    expect(alive(s.pid as number)).toBe(true);
    expect(s.endpoint).toBe(`ws://127.0.0.1:${s.port}`);
    expect(s.health.status).toBe('healthy');

    // The process answers on its endpoint.
    const check = await client.post<Record<string, unknown>>(`/api/v1/health/services/${s.service_id}/check`);
    expect(check.status).toBe(200);
    expect(check.body.data).toMatchObject({ status: 'healthy', message: null });
    expect(typeof check.body.data.response_time_ms).toBe('number');

    const health = (await client.get(`/api/v1/health/services/echo-life`)).body as unknown as Record<string, unknown>;
    expect(health).toMatchObject({ service_id: s.service_id, status: 'healthy', service_status: 'running' });

    // The periodic checker (interval 1 s) adds to the history by itself.
    const history = await eventually(async () => {
      const h = (await client.get(`/api/v1/health/services/${s.service_id}/history?limit=50`)).body as unknown as {
        history: { status: string }[];
      };
      return h.history.length >= 3 ? h.history : null;
    });
    expect(history.every((c) => c.status === 'healthy')).toBe(true);

    const stopped = await admin.post<ServiceView>(`${SERVICES}/${s.service_id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.data).toMatchObject({ status: 'stopped', pid: null });
    expect(alive(s.pid as number)).toBe(false);

    const logs = (await client.get(`/api/v1/logs/services/${s.service_id}?limit=100`)).body as unknown as {
      logs: { message: string; source: string; level: string }[];
    };
    expect(logs.logs.some((l) => l.source === 'stdout' && l.message.includes('listening on'))).toBe(true);
    expect(logs.logs.some((l) => l.source === 'stdout' && l.message.includes('got SIGTERM'))).toBe(true);

    const restarted = await admin.post<ServiceView>(`${SERVICES}/${s.service_id}/restart`);
    expect(restarted.status).toBe(200);
    expect(restarted.body.data.status).toBe('running');
    expect(restarted.body.data.pid).not.toBe(s.pid);
    const again = await admin.post<ServiceView>(`${SERVICES}/${s.service_id}/restart`);
    expect(again.body.data.pid).not.toBe(restarted.body.data.pid);
    expect(alive(restarted.body.data.pid as number)).toBe(false);
  });

  it('restarts a crashed process (kill -9) when auto_restart is on, and not when it is off', async () => {
    const s = await startEcho(admin, 'echo-crash');
    process.kill(s.pid as number, 'SIGKILL');
    const back = await eventually(async () => {
      const v = (await client.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView;
      return v.status === 'running' && v.pid !== s.pid ? v : null;
    });
    expect(back.restart_count).toBe(1);
    expect(alive(back.pid as number)).toBe(true);
    const logs = (await client.get(`/api/v1/logs/search?query=unexpectedly&service_id=echo-crash`)).body as unknown as {
      logs: unknown[];
    };
    expect(logs.logs.length).toBe(1);

    const off = await startEcho(admin, 'echo-no-restart', { config: { auto_restart: false, start_timeout: 10 } });
    process.kill(off.pid as number, 'SIGKILL');
    const errored = await eventually(async () => {
      const v = (await client.get(`${SERVICES}/${off.service_id}`)).body.data as unknown as ServiceView & {
        last_exit_code: number;
      };
      return v.status === 'error' ? v : null;
    });
    expect(errored.pid).toBeNull();
    expect(errored.restart_count).toBe(0);
  });

  it('updates config in part and deletes a running service (stopping it first)', async () => {
    const s = await startEcho(admin, 'echo-config');
    const updated = await put(`${SERVICES}/${s.service_id}/config`, { max_sessions: 200, auto_restart: false });
    expect(updated.status).toBe(200);
    expect(updated.body.data.config).toMatchObject({
      max_sessions: 200,
      auto_restart: false,
      health_check_enabled: true,
      session_timeout: 1800,
    });

    const bad = await put(`${SERVICES}/${s.service_id}/config`, { max_sessions: 'many' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details?.field).toBe('max_sessions');

    const removed = await admin.delete(`${SERVICES}/${s.service_id}`);
    expect(removed.status).toBe(200);
    expect(alive(s.pid as number)).toBe(false);
    const gone = await client.get(`${SERVICES}/${s.service_id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error?.code).toBe('SERVICE_NOT_FOUND');
  });

  it('answers bad input with seed error codes and changes nothing', async () => {
    await registerEcho(admin, 'dup');
    const dup = await admin.post(SERVICES, { name: 'dup', agent_factory_path: ECHO_AGENT });
    expect(dup.status).toBe(409);
    expect(dup.body.error?.code).toBe('SERVICE_ALREADY_EXISTS');

    const missing = await client.get(`${SERVICES}/${MISSING}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'SERVICE_NOT_FOUND', details: { service_id: MISSING } });
    for (const path of [`${SERVICES}/${MISSING}/start`, `/api/v1/health/services/${MISSING}/check`]) {
      expect((await admin.post(path)).body.error?.code).toBe('SERVICE_NOT_FOUND');
    }
    expect((await client.get(`/api/v1/logs/services/nope`)).body.error?.code).toBe('SERVICE_NOT_FOUND');

    const cases: [Record<string, unknown>, string][] = [
      [{ agent_factory_path: ECHO_AGENT }, 'name'],
      [{ name: 'x y', agent_factory_path: ECHO_AGENT }, 'name'],
      [{ name: 'nothing-to-run' }, 'agent_factory_path'],
      [{ name: 'both', agent_factory_path: ECHO_AGENT, endpoint: 'ws://127.0.0.1:1' }, 'endpoint'],
      [{ name: 'bad-port', agent_factory_path: ECHO_AGENT, port: 70000 }, 'port'],
      [{ name: 'bad-port2', agent_factory_path: ECHO_AGENT, port: '8080' }, 'port'],
      [{ name: 'bad-endpoint', endpoint: 'http://x' }, 'endpoint'],
      [{ name: 'bad-check', agent_factory_path: ECHO_AGENT, health_check: { type: 'udp' } }, 'health_check.type'],
      [{ name: 'bad-config', agent_factory_path: ECHO_AGENT, config: { max_sessions: 0 } }, 'config.max_sessions'],
      [{ name: 'bad-tags', agent_factory_path: ECHO_AGENT, tags: 'a,b' }, 'tags'],
      [{ name: 'extra', agent_factory_path: ECHO_AGENT, surprise: 1 }, 'surprise'],
    ];
    for (const [body, field] of cases) {
      const res = await admin.post(SERVICES, body);
      expect({ field, status: res.status, code: res.body.error?.code }).toEqual({
        field,
        status: 400,
        code: 'INVALID_REQUEST',
      }); // seed 003's name for VALIDATION_ERROR
      expect(res.body.error?.details?.field).toBe(field);
    }
    const huge = await admin.post(SERVICES, {
      name: 'huge',
      agent_factory_path: ECHO_AGENT,
      description: 'x'.repeat(2 * 1024 * 1024),
    });
    expect(huge.status).toBe(413);
    const total = (await client.get(SERVICES)).body as unknown as { total: number };
    expect(total.total).toBe(1);

    // A client key may read but not register or start.
    expect((await client.post(SERVICES, { name: 'nope', agent_factory_path: ECHO_AGENT })).status).toBe(403);
    expect((await client.post(`${SERVICES}/dup/start`)).status).toBe(403);

    // Checking a service that is not running is HEALTH_CHECK_FAILED (it cannot pass).
    expect((await client.post(`/api/v1/health/services/dup/check`)).body.error?.code).toBe('HEALTH_CHECK_FAILED');
  });

  it('refuses a port in use: PORT_IN_USE at start (taken by another program) and at register (claimed by a service)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const s = await registerEcho(admin, 'echo-port', { port });
      const start = await admin.post(`${SERVICES}/${s.service_id}/start`);
      expect(start.status).toBe(409);
      expect(start.body.error).toMatchObject({ code: 'PORT_IN_USE', details: { port } });
      const after = (await client.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView;
      expect(after.status).toBe('error');
      expect(after.pid).toBeNull();

      const claimed = await admin.post(SERVICES, { name: 'echo-port-2', agent_factory_path: ECHO_AGENT, port });
      expect(claimed.status).toBe(409);
      expect(claimed.body.error?.code).toBe('PORT_IN_USE');
    } finally {
      blocker.close();
    }
  });

  it('SERVICE_START_FAILED carries the process output when it exits or never gets healthy', async () => {
    const exits = await registerEcho(admin, 'echo-fails', { env: { ECHO_FAIL_START: '1' } });
    const res = await admin.post(`${SERVICES}/${exits.service_id}/start`);
    expect(res.status).toBe(502);
    expect(res.body.error?.code).toBe('SERVICE_START_FAILED');
    expect(res.body.error?.details).toMatchObject({ exit_code: 3 });
    expect((res.body.error?.details?.last_output as string[]).join('\n')).toContain('refusing to start');

    const silent = await registerEcho(admin, 'sleeper', {
      agent_factory_path: undefined,
      command: process.execPath,
      args: ['-e', 'setTimeout(() => {}, 60000)'],
      health_check: { type: 'tcp', interval: 1, timeout: 1 },
      config: { start_timeout: 1 },
    });
    const slow = await admin.post(`${SERVICES}/${silent.service_id}/start`);
    expect(slow.body.error?.code).toBe('SERVICE_START_FAILED');
    expect(slow.body.error?.message).toMatch(/did not pass its tcp health check within 1 s/);
    const after = (await client.get(`${SERVICES}/${silent.service_id}`)).body.data as unknown as ServiceView;
    expect(after).toMatchObject({ status: 'error', pid: null });

    const missing = await registerEcho(admin, 'no-binary', {
      agent_factory_path: undefined,
      command: '/nonexistent/agent',
    });
    const spawnFail = await admin.post(`${SERVICES}/${missing.service_id}/start`);
    expect(spawnFail.body.error?.code).toBe('SERVICE_START_FAILED');
    expect(spawnFail.body.error?.message).toContain('ENOENT');
  });

  it('two concurrent starts of one service run one process; the loser gets CONFLICT', async () => {
    const s = await registerEcho(admin, 'echo-race');
    const [a, b] = await Promise.all([
      admin.post(`${SERVICES}/${s.service_id}/start`),
      admin.post(`${SERVICES}/${s.service_id}/start`),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.body.error?.code).toBe('CONFLICT');
    const v = (await client.get(`${SERVICES}/${s.service_id}`)).body.data as unknown as ServiceView;
    expect(v.status).toBe('running');
  });

  it('an external service is routable at registration and follows its health', async () => {
    const upstream = await startEcho(admin, 'echo-behind');
    const ext = await admin.post(SERVICES, {
      name: 'external',
      endpoint: upstream.endpoint,
      health_check: { type: 'ws', interval: 1, timeout: 1 },
    });
    expect(ext.status).toBe(201);
    const view = (ext.body as unknown as { service: ServiceView }).service;
    expect(view).toMatchObject({ status: 'running', endpoint: upstream.endpoint });
    await admin.post(`${SERVICES}/${upstream.service_id}/stop`);
    const unhealthy = await eventually(async () => {
      const h = (await client.get(`/api/v1/health/services/external`)).body as unknown as { status: string };
      return h.status === 'unhealthy' ? h : null;
    });
    expect(unhealthy.status).toBe('unhealthy');
  });
});
