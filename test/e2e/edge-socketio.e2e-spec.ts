import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket as NetSocket } from 'node:net';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { io, type Socket } from 'socket.io-client';
import { DeviceGateway } from '../../src/modules/realtime/device.gateway.js';
import { EventsGateway } from '../../src/modules/realtime/events.gateway.js';
import { apiClient, type Api } from '../support/api.js';
import { TestDevice } from '../support/device.js';
import { waitFor } from '../support/seed-devices.js';

const until = <T>(fn: () => T | Promise<T>, ms: number): Promise<T> => waitFor('condition', fn, ms, 20);

/** `p`, or a rejection naming `what` after `ms`. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`${what}: not within ${ms} ms`)), ms).unref()),
  ]);
import { bearer, startTestApp, type TestApp, truncate } from '../support/test-app.js';

// The edge of Socket.IO and of streamed HTTP answers (docs/edge.md, "Socket.IO and streamed
// answers"): a peer that stops reading is dropped, not buffered for; connections per address
// and per key are limited with a coded connect_error; an oversize message closes its own
// connection only. Memory is measured in this process (the hub runs here), after full GCs.

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap plus Buffers still reachable after full collections: what the process holds on to. */
async function retainedBytes(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const MiB = 1024 * 1024;
/** The outbound limit of this suite: 256 KiB. */
const LIMIT = 256 * 1024;
/** The largest inbound Socket.IO message of this suite. */
const MAX_MESSAGE = 64 * 1024;
/** What may remain held after a flood to a peer that never reads (the limit, kernel-side buffers excluded, plus noise). */
const FLAT_BOUND = 12 * MiB;

/** Stops reading the socket.io-client's websocket (its TCP socket): the hub's writes back up. */
function stopReading(s: Socket, closers: (() => void)[]): NetSocket {
  const raw = (s.io.engine.transport as unknown as { ws: { _socket: NetSocket } }).ws._socket;
  raw.pause();
  closers.push(() => raw.destroy()); // whatever the hub did, this connection ends with the case
  return raw;
}

/** What the flood upstream streams for `flood-model`: ~40 MB of content, 1 KB per chunk. */
const FLOOD_BYTES = 40 * MiB;

interface FloodProvider {
  url: string;
  /** Bytes of content written so far (all answers). */
  sent: number;
  /** Chat requests received. */
  requests: number;
  /** An answer whose client went away before its end. */
  aborted: boolean;
  close(): Promise<void>;
}

/**
 * An OpenAI-compatible upstream that streams as fast as it is read and no faster (it waits
 * for 'drain', as a real server does): `flood-model` answers FLOOD_BYTES of content, any other
 * model 50 chunks. Content is made as it is sent, so the upstream itself holds nothing here.
 */
async function startFloodProvider(): Promise<FloodProvider> {
  const drained = (res: ServerResponse): Promise<void> =>
    new Promise((ok) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        ok();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  const state = { sent: 0, requests: 0, aborted: false };
  const piece = 'z'.repeat(1000);
  const frame = (delta: Record<string, unknown>, finish: string | null = null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-flood', object: 'chat.completion.chunk', created: 1, model: 'flood-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(parts).toString()) as { model: string };
    state.requests++;
    res.on('close', () => {
      if (!res.writableFinished) state.aborted = true;
    });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(frame({ role: 'assistant', content: '' }));
    const total = body.model === 'flood-model' ? FLOOD_BYTES : 50 * piece.length;
    for (let n = 0; n < total; n += piece.length) {
      if (res.destroyed) return;
      state.sent += piece.length;
      if (!res.write(frame({ content: piece }))) await drained(res);
    }
    res.end(frame({}, 'stop') + 'data: [DONE]\n\n');
  };
  const server: Server = createServer((req, res) => void answer(req, res).catch(() => res.destroy()));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  });
}

describe('the edge: Socket.IO and streamed answers', () => {
  let t: TestApp;
  let client: Api;
  let flood: FloodProvider;
  const closers: (() => void)[] = [];
  /** Hot settings a case changed (back to the suite's after it). */
  const changed = new Set<string>();

  beforeAll(async () => {
    flood = await startFloodProvider();
    t = await startTestApp({
      LLM_PROVIDERS: JSON.stringify([{ name: 'flood', base_url: flood.url, models: ['flood-model', 'small-model'] }]),
      OUTBOUND_LIMIT_BYTES: String(LIMIT),
      SOCKET_IO_MAX_MESSAGE_BYTES: String(MAX_MESSAGE),
      BODY_LIMIT_BYTES: String(8 * MiB),
      // Long enough that no flood below outlives a ping: only the outbound limit may close a socket.
      SOCKET_PING_INTERVAL_MS: '120000',
      SOCKET_PING_TIMEOUT_MS: '120000',
    });
    client = apiClient(t, t.keys.client);
  });
  afterEach(async () => {
    closers.splice(0).forEach((c) => c());
    for (const key of changed)
      await fetch(`${t.url}/v1/config/${key}`, { method: 'DELETE', headers: bearer(t.keys.admin) });
    changed.clear();
    // Every connection gone (their address leases given back) before the next case.
    const engine = t.app.get(DeviceGateway).server.engine;
    await until(() => engine.clientsCount === 0, 15_000);
    await truncate(t.db, 'task_events, tasks, nodes');
  });
  afterAll(async () => {
    await t.close();
    await flood.close();
  });

  /** A Prometheus series of the hub (0 when it has no sample yet). */
  const series = async (name: string, labels: Record<string, string>): Promise<number> => {
    const text = await (await fetch(`${t.url}/metrics?format=prometheus`, { headers: bearer(t.keys.admin) })).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const dropped = (channel: string, reason: string): Promise<number> =>
    series('taskhub_edge_dropped_total', { channel, reason });
  const refused = (channel: string, reason: string): Promise<number> =>
    series('taskhub_edge_refused_total', { channel, reason });

  const setHot = async (settings: Record<string, number>): Promise<void> => {
    const res = await fetch(`${t.url}/v1/config`, {
      method: 'PATCH',
      headers: { ...bearer(t.keys.admin), 'content-type': 'application/json' },
      body: JSON.stringify(settings),
    });
    expect(res.status).toBe(200);
    Object.keys(settings).forEach((k) => changed.add(k));
  };

  /** An /events client (websocket only), connected; rejects with the connect_error. */
  const events = async (key: string, subscribe = true): Promise<Socket> => {
    const s = io(`${t.url}/events`, {
      transports: ['websocket'],
      auth: { token: key },
      reconnection: false,
      forceNew: true,
    });
    closers.push(() => s.disconnect());
    await new Promise<void>((ok, fail) => {
      s.once('connect', () => ok());
      s.once('connect_error', fail);
    });
    if (subscribe) await s.timeout(5000).emitWithAck('subscribe_tasks', {});
    return s;
  };

  /** The connect_error of a client the hub refuses. */
  const refusal = (s: Socket): Promise<Error & { data?: Record<string, unknown> }> =>
    new Promise((ok, fail) => {
      s.once('connect', () => fail(new Error('connected, expected a refusal')));
      s.once('connect_error', ok);
    });

  /**
   * `count` tasks of `promptBytes` each (their task_created events and assignments carry the
   * prompt), in batches of `perBatch`. A batch's events leave in one burst: where another
   * subscriber must keep up, bursts stay under the limit (a burst counts whole against it).
   */
  const submit = async (
    count: number,
    promptBytes: number,
    extra: Record<string, unknown> = {},
    perBatch = Math.max(1, Math.floor(LIMIT / 2 / promptBytes)),
  ): Promise<void> => {
    const prompt = 'x'.repeat(promptBytes);
    for (let done = 0; done < count; done += perBatch) {
      const tasks = Array.from({ length: Math.min(perBatch, count - done) }, () => ({ prompt, ...extra }));
      const res = await client.post<{ created: number }>('/api/v1/tasks/batch', { tasks });
      expect(res.body.data.created).toBe(tasks.length);
    }
  };

  it('/events: a subscriber that stops reading is dropped at OUTBOUND_LIMIT_BYTES, memory stays flat, others still hear every event', async () => {
    const reader = await events(t.keys.client);
    let heard = 0;
    reader.on('task_created', () => heard++);
    const stalled = await events(t.keys.client);
    const stalledId = stalled.id as string;
    const nsp = t.app.get(EventsGateway).nsp;
    expect(nsp.sockets.has(stalledId)).toBe(true);
    const before = await dropped('events', 'slow_consumer');

    await submit(100, 1000); // warm every path once
    await until(() => heard === 100, 10_000);
    const raw = stopReading(stalled, closers);
    const baseline = await retainedBytes();

    // 800 task_created events of ~20 KB each: about 16 MB for every subscriber.
    await submit(800, 20_000);
    await until(() => heard === 900, 60_000);
    const growth = (await retainedBytes()) - baseline;
    console.warn(`/events slow consumer: retained growth ${(growth / MiB).toFixed(1)} MiB for ~16 MB of events`);

    expect(await dropped('events', 'slow_consumer')).toBe(before + 1);
    expect(nsp.sockets.has(stalledId)).toBe(false);
    expect(reader.connected).toBe(true);
    expect(growth).toBeLessThan(FLAT_BOUND);
    // Reading again, the stalled client learns it was closed.
    const gone = new Promise<string>((ok) => stalled.once('disconnect', (reason) => ok(reason)));
    raw.resume();
    expect(await within(gone, 5000, 'disconnect')).toBe('transport close');
  }, 120_000);

  it('/events over HTTP long-polling: a client that stops polling is dropped the same way', async () => {
    const base = `${t.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text(); // 0{"sid": …}
    const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
    const post = (body: string): Promise<Response> =>
      fetch(`${base}&sid=${sid}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    const poll = async (): Promise<string> => (await fetch(`${base}&sid=${sid}`)).text();
    await post(`40/events,${JSON.stringify({ token: t.keys.client })}`);
    expect(await poll()).toMatch(/^40\/events,/);
    await post('42/events,1["subscribe_tasks",{}]');
    expect(await poll()).toMatch(/^43\/events,1\[\{"success":true/);
    const before = await dropped('events', 'slow_consumer');

    // It never polls again: every event waits for it in the hub, up to the limit.
    await submit(100, 20_000);
    await until(async () => (await dropped('events', 'slow_consumer')) === before + 1, 10_000);
    const gone = await fetch(`${base}&sid=${sid}`);
    expect(gone.status).toBe(400); // the session is closed
  });

  it('device channel: a device that stops reading is dropped the same way, another device still gets its tasks', async () => {
    const ok = new TestDevice(t.url, t.keys.worker);
    const slow = new TestDevice(t.url, t.keys.worker);
    closers.push(
      () => ok.close(),
      () => slow.close(),
    );
    await ok.register('edge-ok');
    await slow.register('edge-slow', { capacity: 10_000 });
    const before = await dropped('socket.io', 'slow_consumer');
    const server = t.app.get(DeviceGateway).server;
    const slowId = slow.socket.id as string;

    await submit(10, 1000, { target_node_id: 'edge-slow' }); // warm
    for (let i = 0; i < 10; i++) await slow.next('new_task');
    const raw = stopReading(slow.socket, closers);
    const baseline = await retainedBytes();

    // ~40 MB of assignments (the prompt travels in new_task) to the device that stopped reading.
    await submit(2000, 20_000, { target_node_id: 'edge-slow' }, 100);
    // Dropped, or (without a limit) every assignment sent its way.
    const sent = async (): Promise<number> =>
      Number(
        (
          await t.db.query<{ n: string }[]>(
            `SELECT count(*) AS n FROM tasks WHERE node_id = 'edge-slow' AND status IN ('dispatched', 'running')`,
          )
        )[0].n,
      );
    await until(async () => (await dropped('socket.io', 'slow_consumer')) > before || (await sent()) === 2010, 60_000);
    const growth = (await retainedBytes()) - baseline;
    console.warn(
      `device slow consumer: retained growth ${(growth / MiB).toFixed(1)} MiB, ${(await sent()) - 10} of 2000 ~20 KB assignments sent its way`,
    );
    expect(await dropped('socket.io', 'slow_consumer')).toBe(before + 1);
    expect(server.sockets.sockets.has(slowId)).toBe(false);
    expect(growth).toBeLessThan(FLAT_BOUND);

    // The other device is untouched.
    const mine = await client.post<{ task_id: string }>('/api/v1/tasks', {
      prompt: 'still here',
      target_node_id: 'edge-ok',
    });
    expect((await ok.next('new_task')).task_id).toBe(mine.body.data.task_id);
    raw.resume();
  }, 120_000);

  it('MAX_CONNECTIONS_PER_ADDRESS: past it a connection is refused with connect_error RATE_LIMITED (field address) and closed', async () => {
    await setHot({ MAX_CONNECTIONS_PER_ADDRESS: 3 });
    const open = [await events(t.keys.client, false), await events(t.keys.client, false)];
    const d = new TestDevice(t.url, t.keys.worker);
    closers.push(() => d.close());
    await d.connected(); // all channels together: the third
    const before = await refused('events', 'address_limit');

    const fourth = io(`${t.url}/events`, {
      transports: ['websocket'],
      auth: { token: t.keys.client },
      reconnection: false,
      forceNew: true,
    });
    closers.push(() => fourth.disconnect());
    const closed = new Promise<void>((ok) => fourth.io.once('close', () => ok()));
    const error = await refusal(fourth);
    expect(error.message).toBe('At most 3 connections from one address');
    expect(error.data).toEqual({
      code: 'RATE_LIMITED',
      error_code: 'RATE_LIMITED',
      message: 'At most 3 connections from one address',
      details: { field: 'address' },
      event: 'connect',
    });
    await closed; // the hub does not keep the refused connection
    expect(await refused('events', 'address_limit')).toBe(before + 1);

    // A place given back is a place taken again.
    open[0].disconnect();
    await until(() => t.app.get(DeviceGateway).server.engine.clientsCount === 2, 5000);
    await events(t.keys.client, false);
  });

  it('MAX_CONNECTIONS_PER_KEY: per key and channel, refused with connect_error RATE_LIMITED (field key)', async () => {
    await setHot({ MAX_CONNECTIONS_PER_KEY: 2 });
    const first = await events(t.keys.client, false);
    await events(t.keys.client, false);
    const before = await refused('events', 'key_limit');

    const third = io(`${t.url}/events`, {
      transports: ['websocket'],
      auth: { token: t.keys.client },
      reconnection: false,
      forceNew: true,
    });
    closers.push(() => third.disconnect());
    const error = await refusal(third);
    expect(error.data).toEqual({
      code: 'RATE_LIMITED',
      error_code: 'RATE_LIMITED',
      message: 'At most 2 events connections per API key',
      details: { field: 'key' },
      event: 'connect',
    });
    expect(await refused('events', 'key_limit')).toBe(before + 1);

    // Another key, and the same limit counted apart on the device channel.
    await events(t.keys.admin, false);
    const devices = [new TestDevice(t.url, t.keys.worker), new TestDevice(t.url, t.keys.worker)];
    closers.push(...devices.map((d) => () => d.close()));
    await Promise.all(devices.map((d) => d.connected()));
    const third2 = new TestDevice(t.url, t.keys.worker);
    closers.push(() => third2.close());
    const deviceError = await refusal(third2.socket);
    expect(deviceError.data).toMatchObject({ code: 'RATE_LIMITED', details: { field: 'key' } });
    expect(await refused('socket.io', 'key_limit')).toBeGreaterThanOrEqual(1);

    // A socket that leaves gives its place back.
    first.disconnect();
    await until(async () => {
      const s = io(`${t.url}/events`, {
        transports: ['websocket'],
        auth: { token: t.keys.client },
        reconnection: false,
        forceNew: true,
      });
      closers.push(() => s.disconnect());
      return new Promise<boolean>((ok) => {
        s.once('connect', () => ok(true));
        s.once('connect_error', () => ok(false));
      });
    }, 5000);
  });

  it('SOCKET_IO_MAX_MESSAGE_BYTES: a larger message closes that connection only', async () => {
    const big = new TestDevice(t.url, t.keys.worker);
    const other = new TestDevice(t.url, t.keys.worker);
    closers.push(
      () => big.close(),
      () => other.close(),
    );
    await big.register('edge-big');
    await other.register('edge-other');
    // Just under the limit is read (and answered).
    const near = { device_id: 'edge-big', resources: { blob: 'y'.repeat(MAX_MESSAGE - 200) } };
    expect(await big.request('heartbeat', near)).toHaveProperty('server_time');

    const gone = new Promise<string>((ok) => big.socket.once('disconnect', (reason) => ok(reason)));
    big.socket.emit('heartbeat', { device_id: 'edge-big', resources: { blob: 'y'.repeat(MAX_MESSAGE + 1) } });
    expect(await within(gone, 5000, 'disconnect')).toBe('transport close');
    expect(await dropped('socket.io', 'frame_too_large')).toBeGreaterThanOrEqual(1);
    // The other connection carries on.
    expect(other.socket.connected).toBe(true);
    expect(await other.request('heartbeat', { device_id: 'edge-other' })).toHaveProperty('server_time');
  });

  /** Sends a streamed chat request on a raw socket that then reads nothing at all. */
  const stalledChat = (model: string): NetSocket => {
    const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'flood me' }] });
    const sock = connect(Number(new URL(t.url).port), '127.0.0.1');
    sock.pause();
    sock.on('error', () => undefined);
    sock.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ${t.keys.client}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    closers.push(() => sock.destroy());
    return sock;
  };

  it('LLM stream: a client that stops reading stops the upstream read (backpressure), is dropped at its deadline; memory stays flat, others stream on', async () => {
    await setHot({ LLM_MAX_REQUEST_MS: 4000 });
    const before = await dropped('llm', 'slow_consumer');
    const baseline = await retainedBytes();
    const started = flood.requests;

    const sock = stalledChat('flood-model');
    await until(() => flood.requests === started + 1, 5000);
    // The upstream is read no further than the buffers between it and the client hold (or, unpaced, to its end).
    let last = -1;
    let quietSince = Date.now();
    await until(() => {
      if (flood.sent !== last) [last, quietSince] = [flood.sent, Date.now()];
      return flood.sent >= FLOOD_BYTES || Date.now() - quietSince >= 500;
    }, 15_000);
    const growth = (await retainedBytes()) - baseline;
    console.warn(
      `LLM slow consumer: upstream read ${(flood.sent / MiB).toFixed(1)} of ${FLOOD_BYTES / MiB} MiB, retained growth ${(growth / MiB).toFixed(1)} MiB`,
    );
    expect(flood.sent).toBeLessThan(FLOOD_BYTES / 2);
    expect(growth).toBeLessThan(FLAT_BOUND);

    // Meanwhile another client streams a whole answer.
    const other = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...bearer(t.keys.client), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'small-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await other.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);

    // At the request's deadline the stalled answer is dropped (counted) and its upstream call aborted.
    await until(async () => (await dropped('llm', 'slow_consumer')) === before + 1, 10_000);
    await until(() => flood.aborted, 5000);
    // Reading again, the client finds its answer cut: no [DONE].
    const received: Buffer[] = [];
    sock.on('data', (d: Buffer) => received.push(d));
    await new Promise<void>((ok) => (sock.once('close', () => ok()), sock.resume()));
    const answer = Buffer.concat(received).toString();
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    expect(answer.includes('[DONE]')).toBe(false);
  }, 120_000);
});
