import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCli, type CliDeps, type CliEnv } from '../../src/cli/program.js';
import { alive, ECHO_AGENT, eventually, type ServiceView } from '../support/agents.js';
import { apiClient, type Api } from '../support/api.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';
import { jsonOf, WsClient } from '../support/ws-client.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

interface LogJson {
  seq: number;
  timestamp: string;
  level: string;
  source: string;
  message: string;
}

interface ConnectionJson {
  connection_id: string;
  target_service: string;
  status: string;
  close_reason: string | null;
  message_count: number;
}

interface RuleJson {
  id: string;
  name: string;
  priority: number;
  enabled: boolean;
  conditions: { field: string; operator: string; value: unknown }[];
  target_strategy: string;
  target_tags: string[];
  target_service: string | null;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** A loopback port nothing listens on. */
const closedPort = (): Promise<number> =>
  new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });

describe('taskhub CLI: agent services, connections, routing rules (in-process, against a running hub)', () => {
  let t: TestApp;
  let admin: Api;
  let dir: string;

  beforeAll(async () => {
    t = await startTestApp({ SERVICE_STOP_GRACE_MS: '1000' });
    admin = apiClient(t, t.keys.admin);
    dir = mkdtempSync(join(tmpdir(), 'taskhub-cli-services-'));
  });
  afterEach(async () => {
    const list = await admin.get<{ services: ServiceView[] }>('/api/v1/services?limit=200');
    for (const s of list.body.data.services) await admin.delete(`/api/v1/services/${s.service_id}`);
    await truncate(t.db, 'agent_services, routing_rules');
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.close();
  });

  const io = (out: string[], err: string[]) => ({ out: (s: string) => out.push(s), err: (s: string) => err.push(s) });
  const env = (): CliEnv => ({ TASKHUB_URL: t.url, TASKHUB_KEY: t.keys.admin, DATA_DIR: dir });

  /** Runs `taskhub …args` to the end with the admin key; stdout is not a terminal unless `deps` says so. */
  async function cli(args: string[], deps: CliDeps = {}): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, io(out, err), env(), { cwd: dir, tty: false, ...deps });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  /** Starts a long-running command; its output is readable while it runs, `stop()` aborts it. */
  function background(args: string[]): { out: string[]; err: string[]; stop: () => Promise<number> } {
    const out: string[] = [];
    const err: string[] = [];
    const controller = new AbortController();
    const done = runCli(args, io(out, err), env(), { cwd: dir, tty: false, stop: controller.signal });
    return {
      out,
      err,
      stop: () => {
        controller.abort();
        return done;
      },
    };
  }

  async function apiService(name: string): Promise<ServiceView & Record<string, unknown>> {
    const res = await admin.get<ServiceView & Record<string, unknown>>(`/api/v1/services/${name}`);
    expect(res.status).toBe(200);
    return res.body.data;
  }

  async function registerEcho(name: string, ...extra: string[]): Promise<void> {
    const r = await cli(['register', name, ECHO_AGENT, '--port', '0', '--health-check', 'ws', ...extra]);
    expect(r).toMatchObject({ code: 0, err: '' });
  }

  it('registers with the seed flags, lists with filters and pages, shows detail (table and --json)', async () => {
    const r = await cli([
      'register',
      'weather-agent',
      ECHO_AGENT,
      '--port',
      '0',
      '--tags',
      'weather,info',
      '--max-sessions',
      '7',
      '--description',
      'Weather information agent',
      '--health-check',
      'ws',
      '--health-path',
      '/',
      '--no-auto-restart',
    ]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^Service registered successfully: weather-agent \([0-9a-f-]{36}\)$/m);
    expect(r.out).toMatch(/^status:\s+stopped$/m);
    const stored = await apiService('weather-agent');
    expect(stored).toMatchObject({
      name: 'weather-agent',
      description: 'Weather information agent',
      agent_factory_path: ECHO_AGENT,
      kind: 'managed',
      status: 'stopped',
      tags: ['weather', 'info'],
      health_check: { type: 'ws', path: '/' },
      config: { max_sessions: 7, auto_restart: false },
    });
    expect(stored.service_id).toBe(UUID.exec(r.out)?.[0]);

    // A relative PATH that exists in the working directory is sent as an absolute path.
    const rel = await cli(['register', 'news-agent', 'echo-agent.mjs', '--tags', 'news', '--json'], {
      cwd: dirname(ECHO_AGENT),
    });
    expect(rel.code).toBe(0);
    const relJson = JSON.parse(rel.out) as {
      service_id: string;
      message: string;
      service: ServiceView & { agent_factory_path: string };
    };
    expect(relJson).toMatchObject({
      message: 'Service registered successfully',
      service: { name: 'news-agent', agent_factory_path: ECHO_AGENT },
    });
    expect(relJson.service_id).toBe(relJson.service.service_id);

    // An external service (--endpoint, no PATH) is routable at once: status running.
    const ext = await cli([
      'register',
      'ext-agent',
      '--endpoint',
      `ws://127.0.0.1:${await closedPort()}`,
      '--tags',
      'news',
    ]);
    expect(ext.code).toBe(0);

    const table = await cli(['list']);
    expect(table.code).toBe(0);
    const lines = table.out.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+HEALTH\s+ENDPOINT\s+CONNECTIONS\s+TAGS$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[0])).toEqual(['weather-agent', 'news-agent', 'ext-agent']);
    expect(lines[1]).toMatch(/^weather-agent\s+stopped\s+unknown\s+-\s+0\s+weather,info$/);
    expect(lines[3]).toMatch(/^ext-agent\s+running\s+\w+\s+ws:\/\/127\.0\.0\.1:\d+\s+0\s+news$/);
    expect(lines[4]).toBe('1-3 of 3');

    const news = JSON.parse((await cli(['list', '--tag', 'news', '--json'])).out) as {
      services: ServiceView[];
      total: number;
    };
    expect(news.services.map((s) => s.name)).toEqual(['news-agent', 'ext-agent']);
    expect(news.total).toBe(2);
    const running = JSON.parse((await cli(['list', '--status', 'running', '--json'])).out) as {
      services: ServiceView[];
    };
    expect(running.services.map((s) => s.name)).toEqual(['ext-agent']);
    const page = await cli(['list', '--limit', '1', '--offset', '1']);
    expect(page.out.split('\n').at(-1)).toBe('2-2 of 3 (more: --offset 2)');
    expect((await cli(['list', '--tag', 'nothing'])).out).toBe('no services (total 0)');

    const show = await cli(['show', 'weather-agent']);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(new RegExp(`^service_id:\\s+${stored.service_id}$`, 'm'));
    expect(show.out).toMatch(/^description:\s+Weather information agent$/m);
    expect(show.out).toMatch(/^tags:\s+weather, info$/m);
    expect(show.out).toMatch(new RegExp(`^runs:\\s+${ECHO_AGENT.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    expect(show.out).toMatch(/^health:\s+unknown$/m);
    expect(show.out).toMatch(/^config:\s+.*\bmax_sessions=7\b/m);
    expect(show.out).toMatch(/^config:\s+.*\bauto_restart=false\b/m);
    expect(show.out).toMatch(/^connections:\s+0 active, 0 total, peak 0$/m);

    const byId = await cli(['show', stored.service_id, '--json']);
    expect(byId.code).toBe(0);
    expect(JSON.parse(byId.out)).toEqual(await apiService('weather-agent'));
  });

  it('runs a real agent: start, health-check, logs, monitor, status, stop, remove', async () => {
    await registerEcho('echo-life', '--tags', 'echo');
    const started = await cli(['start', 'echo-life']);
    expect(started.code).toBe(0);
    expect(started.out).toMatch(/^Service started: echo-life$/m);
    expect(started.out).toMatch(/^status:\s+running \(pid \d+, up \d+s\)$/m);
    expect(started.out).toMatch(/^endpoint:\s+ws:\/\/127\.0\.0\.1:\d+$/m);
    const pid = (await apiService('echo-life')).pid as number;
    expect(alive(pid)).toBe(true);

    const check = await cli(['health-check', 'echo-life']);
    expect(check.code).toBe(0);
    expect(check.out).toMatch(/^status:\s+healthy$/m);
    expect(check.out).toMatch(/^response_time:\s+[\d.]+ ms$/m);
    expect(check.out).toContain('recent checks (newest first):');
    expect(check.out).toMatch(/^CHECKED_AT\s+STATUS\s+RESPONSE\s+MESSAGE$/m);
    expect(check.out).toMatch(/^\d{4}-\d\d-\d\dT\S+\s+healthy\s+[\d.]+ ms/m);
    const checkJson = JSON.parse((await cli(['health-check', 'echo-life', '--json'])).out) as {
      status: string;
      name: string;
      history: { status: string }[];
    };
    expect(checkJson).toMatchObject({ status: 'healthy', name: 'echo-life' });
    expect(checkJson.history.length).toBeGreaterThanOrEqual(2); // both manual checks are recorded
    expect(checkJson.history.length).toBeLessThanOrEqual(5);

    const logs = await cli(['logs', 'echo-life']);
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(
      /^\d{4}-\d\d-\d\dT\S+ INFO {2}stdout INFO echo agent echo-life listening on 127\.0\.0\.1:\d+$/m,
    );
    expect(logs.out).toMatch(/ INFO {2}hub {4}registered \(managed\)$/m);
    expect((await cli(['logs', 'echo-life', '--limit', '1'])).out.split('\n')).toHaveLength(1);
    const errorsOnly = JSON.parse((await cli(['logs', 'echo-life', '--level', 'error', '--json'])).out) as {
      logs: LogJson[];
    };
    expect(errorsOnly.logs.every((l) => l.level === 'error')).toBe(true);
    const future = await cli(['logs', 'echo-life', '--since', '2999-01-01T00:00:00Z']);
    expect(future).toMatchObject({ code: 0, out: 'no log entries for echo-life' });

    // --follow prints what is there, then new entries as they come, each once, until stopped.
    const follow = background(['logs', 'echo-life', '--follow', '--interval', '100', '--json']);
    await eventually(async () => follow.out.length > 0);
    const before = follow.out.length;
    const restarted = await cli(['restart', 'echo-life']);
    expect(restarted.code).toBe(0);
    expect(restarted.out).toMatch(/^Service restarted: echo-life$/m);
    await eventually(async () => follow.out.slice(before).some((l) => l.includes('listening on')));
    expect(await follow.stop()).toBe(0);
    expect(follow.err).toEqual([]);
    const followed = follow.out.map((l) => JSON.parse(l) as LogJson);
    expect(followed.slice(before).some((l) => l.message.includes('got SIGTERM'))).toBe(true);
    const seqs = followed.map((l) => l.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    const monitor = await cli(['monitor', '--count', '2', '--interval', '1']);
    expect(monitor.code).toBe(0);
    const snapshots = monitor.out.split(/\n\n(?=taskhub monitor)/);
    expect(snapshots).toHaveLength(2);
    expect(snapshots[0]).toMatch(/^taskhub monitor — \S+ — every 1s \(1\/2\)\n\n/);
    expect(snapshots[1]).toMatch(/^taskhub monitor — \S+ — every 1s \(2\/2\)\n\n/);
    for (const s of snapshots) {
      expect(s).toMatch(/^services:\s+total=1 running=1 stopped=0/m);
      expect(s).toMatch(/^echo-life\s+running\s+healthy\s+ws:\/\//m);
    }
    expect(monitor.out).not.toContain('\x1b[2J');

    const one = await cli(['monitor', '--service', 'echo-life', '--count', '1', '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.out)).toMatchObject({
      service: { name: 'echo-life', status: 'running' },
      health: { status: 'healthy', service_status: 'running' },
    });
    const tty = await cli(['monitor', '--service', 'echo-life', '--count', '1'], { tty: true });
    expect(tty.out.startsWith('\x1b[2J\x1b[Htaskhub monitor — ')).toBe(true);
    expect(tty.out).toMatch(/^name:\s+echo-life$/m);
    expect(tty.out).toMatch(/^health:\s+healthy$/m);

    const status = await cli(['status']);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^services:\s+total=1 running=1 stopped=0 starting=0 error=0$/m);
    for (const block of ['connections', 'sessions', 'performance', 'resources'])
      expect(status.out).toMatch(new RegExp(`^${block}:\\s+\\w+=`, 'm'));
    const statusJson = JSON.parse((await cli(['status', '--json'])).out) as {
      services: Record<string, number>;
      resources: Record<string, number>;
    };
    expect(statusJson.services).toMatchObject({ total: 1, running: 1 });
    expect(statusJson.resources.processes).toBe(existsSync('/proc') ? 1 : 0); // usage is read from /proc

    const newPid = (await apiService('echo-life')).pid as number;
    expect(newPid).not.toBe(pid);
    const stopped = await cli(['stop', 'echo-life']);
    expect(stopped.code).toBe(0);
    expect(stopped.out).toMatch(/^Service stopped: echo-life$/m);
    expect(stopped.out).toMatch(/^status:\s+stopped$/m);
    expect(alive(newPid)).toBe(false);

    const notRunning = await cli(['health-check', 'echo-life']);
    expect(notRunning.code).toBe(1);
    expect(notRunning.err).toMatch(/^error HEALTH_CHECK_FAILED: Service 'echo-life' is stopped/);

    const removed = await cli(['remove', 'echo-life']);
    expect(removed.code).toBe(0);
    expect(removed.out).toMatch(/^Service deleted: echo-life \([0-9a-f-]{36}\)$/);
    expect((await admin.get('/api/v1/services/echo-life')).status).toBe(404);
  }, 60_000);

  it('lists proxied connections and disconnects them, with and without notifying the client', async () => {
    await registerEcho('echo-conn');
    // Frames relayed untouched (the seed's {proxy_metadata, original_message} wrapping is the default).
    const unwrapped = await fetch(`${t.url}/api/v1/services/echo-conn/config`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${t.keys.admin}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ proxy_metadata: false }),
    });
    expect(unwrapped.status).toBe(200);
    expect((await cli(['start', 'echo-conn'])).code).toBe(0);
    const url = `${t.url.replace('http', 'ws')}/ws?service=echo-conn&token=${t.keys.client}`;
    const ws1 = await WsClient.open(url);
    const ws2 = await WsClient.open(url);
    try {
      const id1 = (await ws1.event<{ connection_id: string }>('connection_routed')).connection_id;
      const id2 = (await ws2.event<{ connection_id: string }>('connection_routed')).connection_id;
      expect(await ws1.message()).toMatchObject({ hello: 'echo-conn' });
      ws1.send('ping');
      expect(await ws1.message()).toBe('ping');

      const table = await cli(['connections', '--service', 'echo-conn']);
      expect(table.code).toBe(0);
      const lines = table.out.split('\n');
      expect(lines[0]).toMatch(
        /^ID\s+SESSION\s+SERVICE\s+CLIENT IP\s+STATUS\s+SENT\s+RECEIVED\s+MESSAGES\s+CONNECTED$/,
      );
      expect(lines).toHaveLength(3);
      const row1 = lines.find((l) => l.startsWith(id1)) as string;
      expect(row1).toMatch(/\secho-conn\s+127\.0\.0\.1\s+active\s+\d+\s+\d+\s+\d+\s+\d{4}-\d\d-\d\dT/);

      const active = JSON.parse((await cli(['connections', '--status', 'active', '--json'])).out) as {
        connections: ConnectionJson[];
        total: number;
      };
      expect(active.total).toBe(2);
      expect(active.connections.find((c) => c.connection_id === id1)?.message_count).toBeGreaterThanOrEqual(2);
      expect((await cli(['connections', '--limit', '1'])).out.split('\n').at(-1)).toBe('1 of 2 (more: --limit)');

      const cut = await cli(['disconnect', id1, '--reason', 'maintenance']);
      expect(cut.code).toBe(0);
      expect(cut.out).toMatch(new RegExp(`^Connection closed: ${id1}$`, 'm'));
      const note = await ws1.event<{ type: string; message: string }>('management_notification');
      expect(note).toMatchObject({ type: 'disconnect', message: 'maintenance' });
      await eventually(async () => ws1.closed);

      const quiet = await cli(['disconnect', id2, '--no-notify', '--json']);
      expect(quiet.code).toBe(0);
      expect(JSON.parse(quiet.out)).toMatchObject({ connection_id: id2, message: 'Connection closed' });
      await eventually(async () => ws2.closed);
      expect(ws2.frames.some((f) => jsonOf(f)?.event === 'management_notification')).toBe(false);

      const closed = JSON.parse(
        (await cli(['connections', '--service', 'echo-conn', '--status', 'closed', '--json'])).out,
      ) as { connections: ConnectionJson[] };
      expect(closed.connections.map((c) => c.connection_id).sort()).toEqual([id1, id2].sort());
      expect(closed.connections.find((c) => c.connection_id === id1)?.close_reason).toContain('maintenance');
      expect((await cli(['connections', '--status', 'active'])).out).toBe('no connections (total 0)');

      const again = await cli(['disconnect', id1]);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/^error CONNECTION_NOT_FOUND: /);
    } finally {
      ws1.close();
      ws2.close();
    }
  }, 60_000);

  it('creates, lists and deletes routing rules (by name and by id)', async () => {
    const created = await cli([
      'route',
      'create',
      'vip-routing',
      '--condition',
      'header.x-user-tier=vip',
      '--condition',
      'query.region in eu|us',
      '--condition',
      'header.x-debug?',
      '--condition',
      'header.user-agent~=^Mozilla',
      '--condition',
      'header.x-env!=staging',
      '--condition',
      'client_ip^=10.',
      '--target-tag',
      'high-performance',
      '--target-tag',
      'gpu,fast',
      '--strategy',
      'least_connections',
      '--priority',
      '10',
    ]);
    expect(created.code).toBe(0);
    expect(created.err).toBe('');
    expect(created.out).toMatch(/^name:\s+vip-routing$/m);
    expect(created.out).toMatch(/^enabled:\s+true$/m);
    expect(created.out).toMatch(/^target:\s+tags high-performance,gpu,fast$/m);
    expect(created.out).toMatch(
      /^conditions:\s+header\.x-user-tier=vip AND query\.region in eu\|us AND header\.x-debug\? AND header\.user-agent~=\^Mozilla AND header\.x-env!=staging AND client_ip\^=10\.$/m,
    );
    const rules = await admin.get<{ rules: RuleJson[] }>('/api/v1/routing/rules');
    expect(rules.body.data.rules).toHaveLength(1);
    expect(rules.body.data.rules[0]).toMatchObject({
      name: 'vip-routing',
      priority: 10,
      enabled: true,
      target_strategy: 'least_connections',
      target_tags: ['high-performance', 'gpu', 'fast'],
      target_service: null,
      conditions: [
        { field: 'header.x-user-tier', operator: 'equals', value: 'vip' },
        { field: 'query.region', operator: 'in', value: ['eu', 'us'] },
        { field: 'header.x-debug', operator: 'exists', value: true },
        { field: 'header.user-agent', operator: 'regex', value: '^Mozilla' },
        { field: 'header.x-env', operator: 'not_equals', value: 'staging' },
        { field: 'client_ip', operator: 'contains', value: '10.' },
      ],
    });

    const other = await cli([
      'route',
      'create',
      'pinned',
      '--target-service',
      'echo-x',
      '--strategy',
      'round_robin',
      '--disabled',
      '--json',
    ]);
    expect(other.code).toBe(0);
    const otherJson = JSON.parse(other.out) as RuleJson;
    expect(otherJson).toMatchObject({
      name: 'pinned',
      enabled: false,
      conditions: [],
      target_service: 'echo-x',
      target_strategy: 'round_robin',
      priority: 0,
    });

    const list = await cli(['route', 'list']);
    expect(list.code).toBe(0);
    const lines = list.out.split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+PRIORITY\s+ENABLED\s+STRATEGY\s+TARGET\s+CONDITIONS$/);
    expect(lines[1]).toMatch(
      /^[0-9a-f-]{36}\s+vip-routing\s+10\s+true\s+least_connections\s+tags high-performance,gpu,fast\s+header\.x-user-tier=vip AND /,
    );
    expect(lines[2]).toMatch(
      new RegExp(`^${otherJson.id}\\s+pinned\\s+0\\s+false\\s+round_robin\\s+service echo-x\\s+\\(always\\)$`),
    );
    expect(lines[3]).toBe('1-2 of 2');
    const disabled = JSON.parse((await cli(['route', 'list', '--enabled', 'false', '--json'])).out) as {
      rules: RuleJson[];
    };
    expect(disabled.rules.map((r) => r.name)).toEqual(['pinned']);

    const dup = await cli(['route', 'create', 'pinned']);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/^error CONFLICT: A routing rule named 'pinned' already exists/);

    const byName = await cli(['route', 'delete', 'vip-routing']);
    expect(byName.code).toBe(0);
    expect(byName.out).toMatch(/^deleted routing rule vip-routing \([0-9a-f-]{36}\)$/);
    const byId = await cli(['route', 'delete', otherJson.id, '--json']);
    expect(byId.code).toBe(0);
    expect(JSON.parse(byId.out)).toMatchObject({ id: otherJson.id, name: 'pinned' });
    expect((await cli(['route', 'list'])).out).toBe('no routing rules (total 0)');

    const missing = await cli(['route', 'delete', 'vip-routing']);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe("error NOT_FOUND: No routing rule named 'vip-routing'");
  });

  it('a bad --condition is refused before any request; a field the hub rejects names conditions[i]', async () => {
    for (const [bad, why] of [
      ['header.x-user-tier', 'no operator'],
      ['=vip', 'no field before the operator'],
      ['header x=vip', 'field "header x" holds a space'],
      ['header.ua~=', '~= needs a pattern'],
      ['query.region in |', '"in" needs at least one value'],
    ]) {
      const r = await cli(['route', 'create', 'bad', '--condition', 'header.ok=1', '--condition', bad]);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(
        `error: option '--condition <expr>' argument '${bad}' is invalid. ${why}; expected field=value`,
      );
    }
    expect((await admin.get<{ rules: RuleJson[] }>('/api/v1/routing/rules')).body.data.rules).toEqual([]);

    const server = await cli(['route', 'create', 'bad', '--condition', 'nope.x=1']);
    expect(server.code).toBe(1);
    expect(server.err).toMatch(/^error INVALID_REQUEST: .+\n {2}field conditions\[0\]\.field/);
  });

  it('hub errors: unknown service, duplicate name, start failure with the last output, unhealthy check', async () => {
    for (const args of [
      ['show', 'nope'],
      ['start', 'nope'],
      ['stop', 'nope'],
      ['restart', 'nope'],
      ['remove', 'nope'],
      ['logs', 'nope'],
      ['health-check', 'nope'],
      ['show', 'nope', '--json'],
      ['monitor', '--service', 'nope', '--count', '1'],
      ['connections', '--service', 'nope'],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^error SERVICE_NOT_FOUND: /);
    }

    await registerEcho('dup-agent');
    const dup = await cli(['register', 'dup-agent', ECHO_AGENT]);
    expect(dup.code).toBe(1);
    expect(dup.err).toBe("error SERVICE_ALREADY_EXISTS: A service named 'dup-agent' already exists\n  field name");

    const noPath = await cli(['register', 'lost-agent', '--port', '0']);
    expect(noPath.code).toBe(1);
    expect(noPath.err).toBe('error: PATH is required unless --command or --endpoint is given');
    const unterminated = await cli(['register', 'lost-agent', '--command', 'sh', '--args', "-c 'echo"]);
    expect(unterminated.code).toBe(1);
    expect(unterminated.err).toContain("unterminated ' quote");
    expect((await admin.get('/api/v1/services/lost-agent')).status).toBe(404);

    // --command/--args: split like a shell; the process fails and its output comes back.
    const failer = await cli([
      'register',
      'failer',
      '--command',
      'sh',
      '--args',
      `-c 'echo "ERROR boom on {port}"; exit 3'`,
      '--json',
    ]);
    expect(failer.code).toBe(0);
    expect(JSON.parse(failer.out)).toMatchObject({
      service: { command: 'sh', args: ['-c', 'echo "ERROR boom on {port}"; exit 3'] },
    });
    const start = await cli(['start', 'failer']);
    expect(start.code).toBe(1);
    expect(start.out).toBe('');
    expect(start.err).toMatch(
      /^error SERVICE_START_FAILED: Service 'failer' exited during start \(exit code 3\)\n {2}last output:\n {4}ERROR boom on \d+$/m,
    );

    // An external endpoint nobody listens on: the check runs and fails, exit code 1.
    const ext = await cli(['register', 'dead-ext', '--endpoint', `ws://127.0.0.1:${await closedPort()}`]);
    expect(ext.code).toBe(0);
    const check = await cli(['health-check', 'dead-ext']);
    expect(check.code).toBe(1);
    expect(check.err).toBe('');
    expect(check.out).toMatch(/^status:\s+unhealthy$/m);
    expect(check.out).toMatch(/^message:\s+\S+/m);
    const checkJson = await cli(['health-check', 'dead-ext', '--json']);
    expect(checkJson.code).toBe(1);
    expect(JSON.parse(checkJson.out)).toMatchObject({ name: 'dead-ext', status: 'unhealthy' });

    const badSince = await cli(['logs', 'dead-ext', '--since', 'yesterday']);
    expect(badSince.code).toBe(1);
    expect(badSince.err).toContain('not an ISO 8601 time');
  }, 60_000);
});
