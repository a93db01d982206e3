import pg from 'pg';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { DeviceClient } from '../../src/sdk/device-client.js';
import { ReconnectingApexNode } from '../support/apex-node.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-llm-provider.js';
import { freshDatabase, HubProcess } from '../support/hub-process.js';
import { Nginx, nginxBinary } from '../support/nginx.js';
import { sleep, waitFor } from '../support/seed-devices.js';

// The scale-out deployment of docker-compose.yml, proven without containers (DESIGN.md,
// "Scale-out"; docs/deployment.md, "The loopback proof"): Debian's nginx runs the very config
// compose mounts (deploy/nginx/nginx.conf) in front of two real hub processes sharing one
// PostgreSQL database and Redis. Every client talks to the balancer only: SDK devices
// (Socket.IO over WebSocket), an Apex node (raw WebSocket), an /events subscriber (Socket.IO
// long-polling: sticky), REST. Then one hub is SIGKILLed: its devices must come back through
// the balancer to the other, and every task must complete exactly once.
//
// Needs the built app, REDIS_URL and nginx. Without nginx it is skipped, saying so — except in
// CI (CI=true), where it must run: .ci/run installs nginx and runs it as its own step.

const NGINX = nginxBinary();
const inCi = process.env.CI === 'true';
const skipReason =
  HubProcess.skipReason() ??
  (!process.env.REDIS_URL
    ? 'REDIS_URL is not set (two hubs share Socket.IO rooms through Redis)'
    : !NGINX && !inCi
      ? 'nginx is not installed (apt-get install -y nginx); CI installs it and requires this suite'
      : null);
if (skipReason) process.stdout.write(`\n[load-balancer] skipped: ${skipReason}\n`);

const DEVICES = 6;
const TASKS = 60;
/** Every sixth task goes to the Apex node by name (the rest to whoever is free). */
const APEX_EVERY = 6;
const TASK_MS = 300;
const LONG_MS = 30_000;

interface Fleet {
  devices: DeviceClient[];
  apex: ReconnectingApexNode;
  /** Registrations per node id, with the time of each. */
  registeredAt: Map<string, number[]>;
  /** Handler starts per task id (executions, including re-runs after a failover). */
  runs: Map<string, number>;
  /**
   * Results the hub acknowledged as applied, per task id: each ack an SDK device got (it keeps
   * a result until acked, so a completion is acked once), and each attempt the Apex node got a
   * success for (a seed node runs a task again when the hub re-sends it after its re-register;
   * the hub answers the repeated result of a completed attempt without applying it again).
   */
  completions: Map<string, number>;
  /** Tasks whose run the hub cancelled on the device. */
  aborted: Set<string>;
}

const bump = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1);

(skipReason ? describe.skip : describe)('scale-out behind nginx (the compose topology on loopback)', () => {
  let hubs: HubProcess[] = [];
  let nginx: Nginx;
  let db: pg.Client;
  let provider: FakeProvider;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    if (!NGINX) throw new Error('nginx is required in CI: install it (apt-get install -y nginx)');
    provider = await startFakeProvider({ models: ['fake-model'] });
    const databaseUrl = await freshDatabase('load_balancer');
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: process.env.REDIS_URL as string,
      AUTH_REQUIRED: 'false',
      RATE_LIMIT_MAX: '0',
      // As in docker-compose.yml: nginx is trusted to name the client (here it is on loopback).
      TRUST_PROXY: 'loopback',
      LLM_PROVIDERS: JSON.stringify([{ name: 'fake', base_url: provider.url, models: ['fake-model'] }]),
    };
    // One at a time: the first migrates the empty database.
    hubs = [await new HubProcess(env).start(), await new HubProcess(env).start()];
    nginx = await new Nginx(NGINX).start(hubs.map((h) => `127.0.0.1:${h.port}`));
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
  }, 90_000);

  afterAll(async () => {
    closers.splice(0).forEach((close) => close());
    await db?.end().catch(() => undefined);
    await Promise.all(hubs.map((h) => h.stop()));
    await nginx?.stop();
    await provider?.close();
    if (nginx && /\[(emerg|alert|crit)\]/.test(nginx.errorLog()))
      process.stdout.write(`\n[load-balancer] nginx error log:\n${nginx.errorLog().slice(-3000)}\n`);
    nginx?.cleanup();
  }, 30_000);

  const lb = (path: string): string => `${nginx.url}${path}`;
  const hubOf = (addr: string): number => hubs.findIndex((h) => addr === `127.0.0.1:${h.port}`);

  async function submit(body: Record<string, unknown>, key: string): Promise<string> {
    // A submission no hub took (502/503 from nginx) is repeated with the same idempotency key:
    // however often it is sent, the first acknowledged task is the one.
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(lb('/api/v1/tasks'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...body, idempotency_key: key }),
      });
      const json = (await res.json().catch(() => null)) as { data?: { task_id?: string } } | null;
      if ((res.status === 201 || res.status === 200) && json?.data?.task_id) return json.data.task_id;
      if (attempt === 5) throw new Error(`submit ${key}: ${res.status} ${JSON.stringify(json)}`);
      await sleep(200);
    }
  }

  /** Which hub holds each node now (nodes.instance_id → hub_instances.name `<host>:<port>`). */
  async function placement(): Promise<Map<string, number>> {
    const { rows } = await db.query<{ id: string; name: string | null; status: string }>(
      `SELECT n.id, h.name, n.status FROM nodes n LEFT JOIN hub_instances h ON h.id = n.instance_id`,
    );
    const out = new Map<string, number>();
    for (const r of rows) {
      if (r.status !== 'online' || !r.name) continue;
      out.set(
        r.id,
        hubs.findIndex((h) => r.name?.endsWith(`:${h.port}`)),
      );
    }
    return out;
  }

  it('serves REST, Socket.IO (WebSocket, sticky long-polling, upgrade), the raw channels and SSE through nginx, on both hubs', async () => {
    // REST spreads over both hubs (least_conn with shared counts).
    const before = nginx.access().length;
    for (let i = 0; i < 10; i++) expect((await fetch(lb('/healthz'))).status).toBe(200);
    await waitFor('access lines of the /healthz requests', () => nginx.access().length >= before + 10, 2000);
    const served = new Set(
      nginx
        .access()
        .slice(before)
        .map((l) => hubOf(l.upstream)),
    );
    expect([...served].sort()).toEqual([0, 1]);

    // nginx states the client address; what a client writes in X-Forwarded-For is replaced.
    const spoofed = await fetch(lb('/api/v1/no-such-route'), { headers: { 'X-Forwarded-For': '203.0.113.66' } });
    expect(spoofed.status).toBe(404);
    await waitFor(
      'the hub logged the 404 with its client address',
      () => hubs.some((h) => /no-such-route[^\n]*"remote_address":"127\.0\.0\.1"/.test(h.output)),
      3000,
    );
    expect(hubs.some((h) => h.output.includes('203.0.113.66'))).toBe(false);

    // Socket.IO long-polling: every poll of the session must reach the hub that holds it.
    const polling = io(lb('/events'), { transports: ['polling'], forceNew: true, reconnection: false });
    closers.push(() => polling.disconnect());
    await new Promise<void>((ok, fail) => {
      polling.once('connect', ok);
      polling.once('connect_error', fail);
    });
    for (let i = 0; i < 10; i++)
      expect(await polling.timeout(3000).emitWithAck('subscribe_tasks', { taskIds: [`t-${i}`] })).toMatchObject({
        success: true,
      });
    expect(polling.connected).toBe(true);
    // Polling, then the upgrade to WebSocket carrying the session id: same hub.
    const upgraded = io(lb('/events'), { forceNew: true, reconnection: false });
    closers.push(() => upgraded.disconnect());
    await waitFor(
      'the polling session upgraded to WebSocket',
      () => upgraded.io.engine?.transport.name === 'websocket',
      5000,
    );
    expect(await upgraded.timeout(3000).emitWithAck('subscribe_tasks', { all: true })).toMatchObject({ success: true });

    // The raw WebSocket stream.
    const ws = new WebSocket(lb('/ws').replace('http', 'ws'));
    closers.push(() => ws.terminate());
    const first = await new Promise<{ type: string }>((ok, fail) => {
      ws.once('message', (m) => ok(JSON.parse(m.toString()) as { type: string }));
      ws.once('error', fail);
    });
    expect(first.type).toBe('connected');

    // Server-sent events reach the client as the hub writes them (proxy_buffering off).
    provider.setBehavior({ dripMs: 250, chunks: 6 });
    const started = Date.now();
    const sse = await fetch(lb('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    const firstChunk = await reader.read();
    const firstAt = Date.now() - started;
    let text = new TextDecoder().decode(firstChunk.value);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const doneAt = Date.now() - started;
    expect(text).toContain('data: [DONE]');
    expect(doneAt).toBeGreaterThanOrEqual(1250);
    expect(firstAt).toBeLessThan(doneAt - 750);
    provider.reset();
  }, 30_000);

  it('SIGKILL of one hub: its devices come back through nginx to the other, every task completes exactly once', async () => {
    const fleet: Fleet = {
      devices: [],
      apex: new ReconnectingApexNode(() => lb('/abp-distributed-server/VCP_Key=').replace('http', 'ws'), 'lb-apex'),
      registeredAt: new Map(),
      runs: new Map(),
      completions: new Map(),
      aborted: new Set(),
    };
    const registered = (id: string): void =>
      void fleet.registeredAt.set(id, [...(fleet.registeredAt.get(id) ?? []), Date.now()]);
    const apexAcked = new Set<string>();

    // The Apex node first, then the devices one by one: least_conn alternates the hubs.
    const apexRegistered = fleet.apex.start();
    closers.push(() => fleet.apex.stop());
    await apexRegistered;
    registered('lb-apex');
    let apexRegistrations = 1;
    let apexSeen = 0;
    const apexRunner = setInterval(() => {
      while (fleet.apex.registrations > apexRegistrations) {
        apexRegistrations++;
        registered('lb-apex');
      }
      // The node runs what it is handed and reports it; a report whose answer is lost with its
      // connection is repeated after the node's re-register (the hub answers it as applied).
      for (; apexSeen < fleet.apex.assignments.length; apexSeen++) {
        const { task_id, attempt } = fleet.apex.assignments[apexSeen];
        bump(fleet.runs, task_id);
        setTimeout(() => {
          fleet.apex.report(task_id, attempt).then(
            (answer) => {
              const key = `${task_id}:${attempt}`;
              if ((answer.data as { success?: boolean }).success && !apexAcked.has(key)) {
                apexAcked.add(key);
                bump(fleet.completions, task_id);
              }
            },
            () => undefined,
          );
        }, TASK_MS);
      }
    }, 10);
    closers.push(() => clearInterval(apexRunner));

    for (let i = 1; i <= DEVICES; i++) {
      const id = `lb-dev-${i}`;
      const c = new DeviceClient({ url: nginx.url, id, name: id, capacity: 1 });
      c.on('registered', () => registered(id));
      c.on('hub-error', () => undefined);
      c.on('result-acknowledged', (taskId: string) => bump(fleet.completions, taskId));
      c.on('cancelled', (taskId: string) => fleet.aborted.add(taskId));
      c.onTask(async ({ task, signal }) => {
        bump(fleet.runs, task.task_id);
        const ms = (task.data as { ms?: number } | null)?.ms ?? TASK_MS;
        await new Promise<void>((ok, fail) => {
          const timer = setTimeout(ok, ms);
          signal.addEventListener('abort', () => (clearTimeout(timer), fail(new Error('cancelled'))), { once: true });
        });
        return { by: id };
      });
      fleet.devices.push(c);
      closers.push(() => c.close());
      await c.connect();
    }

    // An /events client on long-polling (sticky), subscribed to every task again after each connect.
    const events = io(lb('/events'), { transports: ['polling'], forceNew: true, reconnectionDelay: 250 });
    closers.push(() => events.disconnect());
    const heard: { at: number; taskId: string }[] = [];
    const cancelledEvents = new Set<string>();
    let eventsDisconnects = 0;
    events.on('connect', () => void events.emit('subscribe_tasks', { all: true }));
    events.on('disconnect', () => eventsDisconnects++);
    events.on('task_completed', (e: { taskId: string }) => heard.push({ at: Date.now(), taskId: e.taskId }));
    events.on('task_cancelled', (e: { taskId: string }) => cancelledEvents.add(e.taskId));
    await waitFor('the /events client connected', () => events.connected, 5000);

    // Both hubs hold devices; the one holding the Apex node is the victim.
    const before = await waitFor(
      'every node online',
      async () => {
        const p = await placement();
        return p.size === DEVICES + 1 && p;
      },
      5000,
    );
    const victim = before.get('lb-apex') as number;
    const survivor = 1 - victim;
    const onVictim = [...before].filter(([, h]) => h === victim).map(([id]) => id);
    const onSurvivor = [...before].filter(([, h]) => h === survivor).map(([id]) => id);
    expect(onVictim.filter((id) => id !== 'lb-apex').length).toBeGreaterThan(0);
    expect(onSurvivor.length).toBeGreaterThan(0);

    // Long tasks to cancel: one held on the survivor (cancelled before the kill), one on the
    // victim (cancelled after it, once its device is back through the other hub), one never run.
    const longOnSurvivor = await submit(
      { type: 'long', data: { ms: LONG_MS }, target_node_id: onSurvivor.find((id) => id !== 'lb-apex') },
      'long-survivor',
    );
    const longOnVictim = await submit(
      { type: 'long', data: { ms: LONG_MS }, target_node_id: onVictim.find((id) => id !== 'lb-apex') },
      'long-victim',
    );
    const delayed = await submit(
      { type: 'later', data: {}, run_at: new Date(Date.now() + 3_600_000).toISOString() },
      'delayed',
    );
    await waitFor(
      'both long tasks running',
      () => (fleet.runs.get(longOnSurvivor) ?? 0) > 0 && (fleet.runs.get(longOnVictim) ?? 0) > 0,
      5000,
    );

    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 10)
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, (_, k) =>
            submit(
              {
                type: 'work',
                data: { n: i + k },
                ...((i + k) % APEX_EVERY === 0 ? { target_node_id: 'lb-apex' } : {}),
              },
              `work-${i + k}`,
            ),
          ),
        )),
      );
    const cancel = async (id: string): Promise<number> =>
      (
        await fetch(lb(`/api/v1/tasks/${id}/cancel`), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ reason: 'through the balancer' }),
        })
      ).status;
    expect(await cancel(longOnSurvivor)).toBe(200);
    expect(await cancel(delayed)).toBe(200);

    // Kill the victim once about a third of the work is done.
    const doneCount = async (): Promise<number> =>
      (
        await db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'completed'`, [
          ids,
        ])
      ).rows[0].n as number;
    await waitFor('a third of the tasks completed', async () => (await doneCount()) >= TASKS / 3, 20_000, 20);
    const atKill = await doneCount();
    const heardBeforeKill = heard.length;
    const killAt = Date.now();
    await hubs[victim].kill();

    // Recovery: the victim's nodes register again (through nginx, so on the survivor) …
    const regsAtKill = new Map(onVictim.map((id) => [id, (fleet.registeredAt.get(id) ?? []).length]));
    await waitFor(
      'every node of the killed hub registered again',
      () => onVictim.every((id) => (fleet.registeredAt.get(id) ?? []).length > (regsAtKill.get(id) ?? 0)),
      30_000,
      10,
    );
    const reRegisteredMs =
      Math.max(...onVictim.map((id) => (fleet.registeredAt.get(id) as number[])[regsAtKill.get(id) as number])) -
      killAt;
    // … and the long task it held is cancelled through the other hub.
    expect(await cancel(longOnVictim)).toBe(200);

    // … and the backlog drains.
    let drainedMs = -1;
    await waitFor(
      'every task completed',
      async () => {
        if ((await doneCount()) < TASKS) return false;
        drainedMs = Date.now() - killAt;
        return true;
      },
      60_000,
      20,
    );
    await waitFor(
      'the fleet is back on the survivor',
      async () => {
        const p = await placement();
        return p.size === DEVICES + 1 && [...p.values()].every((h) => h === survivor) && p;
      },
      10_000,
    );
    await waitFor('the long task on the moved device was stopped', () => fleet.aborted.has(longOnVictim), 5000);
    await sleep(500); // late duplicates, if any, would show up here

    const { rows: completedEvents } = await db.query<{ task_id: string; n: number }>(
      `SELECT task_id, count(*)::int AS n FROM task_events WHERE type = 'completed' AND task_id = ANY($1::uuid[]) GROUP BY task_id`,
      [[...ids, longOnSurvivor, longOnVictim, delayed]],
    );
    const dbCompletions = new Map(completedEvents.map((r) => [r.task_id, r.n]));
    const { rows: statuses } = await db.query<{ id: string; status: string }>(
      `SELECT id, status FROM tasks WHERE id = ANY($1::uuid[])`,
      [[longOnSurvivor, longOnVictim, delayed]],
    );
    const deviceCompletions = (id: string): number => fleet.completions.get(id) ?? 0;
    const reruns = ids.filter((id) => (fleet.runs.get(id) ?? 0) > 1).length;
    const heardAfter = heard.filter((h) => h.at > killAt).length;
    // What the last task to complete went through, ms from the kill (why the drain took what it took).
    const { rows: lastEvents } = await db.query<{ type: string; ms: number; attempt: number; message: string }>(
      `SELECT e.type, (extract(epoch FROM e.at) * 1000 - $2::bigint)::int AS ms, e.attempt, e.message
         FROM task_events e
        WHERE e.task_id = (SELECT id FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY completed_at DESC LIMIT 1)
        ORDER BY e.id`,
      [ids, killAt],
    );

    process.stdout.write(
      `\n[load-balancer] hubs :${hubs[0].port} :${hubs[1].port} behind nginx :${nginx.port}; ` +
        `${DEVICES} SDK devices + 1 Apex node, ${onVictim.length} on the killed hub (${onVictim.join(', ')}); ` +
        `${TASKS} tasks, ${atKill} completed at the kill; kill → all its nodes re-registered ${reRegisteredMs} ms; ` +
        `kill → backlog drained ${drainedMs} ms; re-runs ${reruns}; /events heard ${heardBeforeKill} completions before the kill, ${heardAfter} after (${eventsDisconnects} reconnects); ` +
        `last task: ${lastEvents.map((e) => `${e.type}@${e.ms}ms#${e.attempt}${e.type === 'completed' || e.type === 'created' ? '' : ` (${e.message})`}`).join(', ')}\n`,
    );

    // One comparison, so a failure shows every broken property at once.
    expect({
      lost: ids.filter((id) => (dbCompletions.get(id) ?? 0) === 0),
      // completed in the database, but the node that ran it never heard its report acknowledged
      unacknowledged: ids.filter((id) => (dbCompletions.get(id) ?? 0) > 0 && deviceCompletions(id) === 0),
      duplicates: ids.filter((id) => (dbCompletions.get(id) ?? 0) > 1 || deviceCompletions(id) > 1),
      cancelled: Object.fromEntries(statuses.map((r) => [r.id, r.status])),
      cancelledCompletions: [longOnSurvivor, longOnVictim, delayed].filter(
        (id) => (dbCompletions.get(id) ?? 0) > 0 || deviceCompletions(id) > 0,
      ),
      cancelNoticesHeard: [longOnSurvivor, longOnVictim, delayed].filter((id) => cancelledEvents.has(id)).length > 0,
      eventsAfterFailover: heardAfter > 0,
      survivorRunning: hubs[survivor].running,
    }).toEqual({
      lost: [],
      unacknowledged: [],
      duplicates: [],
      cancelled: { [longOnSurvivor]: 'cancelled', [longOnVictim]: 'cancelled', [delayed]: 'cancelled' },
      cancelledCompletions: [],
      cancelNoticesHeard: true,
      eventsAfterFailover: true,
      survivorRunning: true,
    });
  }, 120_000);
});
