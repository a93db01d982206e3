// Edge footprint (issue 22): what clients that never finish or never read cost the hub.
//
// 1. Idle sockets: BENCH_EDGE_SOCKETS (2,000) raw TCP connections to the hub's port that
//    (a) send nothing, (b) send a partial upgrade request (`GET /ws HTTP/1.1`, Host, Upgrade, no
//    blank line) and stall. Hub RSS before and with them open, how many are still open 5 s,
//    20 s and 30 s after the last one connected (HTTP_HEADERS_TIMEOUT_MS, 15 s, closes them
//    with a 408; Node's default headersTimeout is 60 s, checked every 30 s), and the p50 of 50
//    sequential `POST /api/v1/tasks` while they are open.
// 2. A subscriber that never reads, under about 1,000 task events a second: `POST
//    /api/v1/tasks/batch` of BENCH_EDGE_BATCH (100) tasks every BENCH_EDGE_TICK_MS (100 ms) for
//    BENCH_EDGE_LOAD_SECONDS (30 s), each task a `task_created` to every subscriber (prompts of
//    BENCH_EDGE_PROMPT_BYTES, 1 KiB). One run per subscriber, each on a fresh hub:
//      events   `/events` (Socket.IO, spoken directly: engine.io over `ws`, so no client-side
//               ping timer closes it), subscribed to every task, then its TCP socket paused
//      ws       raw `/ws?token=` (hears every task), then its TCP socket paused
//      control  (only when asked for: --only=…,control) a reading `/events` and a reading `/ws`
//               subscriber: what the load alone costs, and how many bytes a subscriber is sent
//    Hub RSS every second (before, peak, end), the subscriber's connection as `ss` sees it
//    (hub-side state and Send-Q, client-side Recv-Q), and from `GET /metrics` (Prometheus text,
//    admin key) `taskhub_socket_connections{channel}` (when the hub let the subscriber go) and
//    `taskhub_edge_dropped_total` (why; absent before issue 22). After the load the subscriber
//    reads again (until its stream ends or is quiet for 1 s, at most 5 s): how much the hub
//    still had for it beyond the kernel's buffers, and how its stream ended.
//
//   node dist/bench/edge-footprint.js [--hub <repo>] [--mode=postgres|embedded] [--out <file>]
//                                     [--only=idle,events,ws,control]          (npm run bench:edge)
//   --hub   a repository whose build (dist/src/main.js) is run (default: this one), e.g. a
//           worktree of older code for "before" numbers; the bench itself is always this one
//   --mode  postgres (default): a fresh database taskhub_bench_edge + BENCH_DB_SUFFIX on the
//           local PostgreSQL; embedded: the hub's own PostgreSQL in a temp DATA_DIR
//   --out   the JSON report (default artifacts/edge-footprint-<hub commit>.json)
// Auth is on (AUTH_REQUIRED=true): the bench uses the bootstrap admin key and a client key.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket as NetSocket } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type RawData, WebSocket } from 'ws';
import {
  api,
  bootstrapAdminKey,
  type HubMode,
  type ModeHub,
  percentile,
  round,
  sleep,
  startModeHub,
} from './lib/services.js';

const SOCKETS = Number(process.env.BENCH_EDGE_SOCKETS ?? 2000);
const LOAD_SECONDS = Number(process.env.BENCH_EDGE_LOAD_SECONDS ?? 30);
const BATCH = Number(process.env.BENCH_EDGE_BATCH ?? 100);
const TICK_MS = Number(process.env.BENCH_EDGE_TICK_MS ?? 100);
const PROMPT_BYTES = Number(process.env.BENCH_EDGE_PROMPT_BYTES ?? 1024);
/** Seconds after the last idle socket connected at which the open ones are counted. */
const CHECKPOINTS = [5, 20, 30];
const SUBMITS = 50;
/** Seconds of sampling after the load, and the most a never-reader then gets to read. */
const TAIL_SECONDS = 2;
const RESUME_SECONDS = 5;
const PARTIAL_UPGRADE = 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n';
const MB = 1024 * 1024;
const run = promisify(execFile);

// ---------------------------------------------------------------- arguments

function argValue(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

const HUB_ROOT = resolve(argValue('hub') ?? '.');
const MODE = (argValue('mode') ?? process.env.BENCH_MODE ?? 'postgres') as HubMode;
if (MODE !== 'postgres' && MODE !== 'embedded') throw new Error(`--mode: postgres or embedded, got "${MODE}"`);
type Part = 'idle' | 'control' | 'events' | 'ws';
const PARTS = (argValue('only') ?? 'idle,events,ws').split(',') as Part[];
for (const p of PARTS)
  if (!['idle', 'control', 'events', 'ws'].includes(p))
    throw new Error(`--only: idle, control, events, ws; got "${p}"`);

function hubCommit(): string {
  try {
    const rev = execFileSync('git', ['-C', HUB_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', HUB_ROOT, 'status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${rev}-dirty` : rev;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- measuring the hub

/** VmRSS of a process, MB. */
function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return round(Number(m[1]) / 1024, 1);
}

const hubPid = (h: ModeHub): number => {
  if (h.hub.pid === undefined) throw new Error('the hub has no pid');
  return h.hub.pid;
};

interface Scrape {
  /** taskhub_socket_connections by channel. */
  clients: Record<string, number>;
  /** taskhub_edge_dropped_total by "channel/reason"; null when the hub has no such metric. */
  dropped: Record<string, number> | null;
}

/** The Prometheus text of GET /metrics (admin key), the two series the bench reads; null if it did not answer in 3 s. */
async function scrape(h: ModeHub, key: string): Promise<Scrape | null> {
  let text: string;
  try {
    const res = await fetch(`${h.hub.url}/metrics?format=prometheus`, {
      headers: { Accept: 'text/plain', Authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
    text = await res.text();
  } catch {
    return null;
  }
  const series = (name: string): [Record<string, string>, number][] =>
    [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].map((m) => [
      Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]])),
      Number(m[2]),
    ]);
  const clients = Object.fromEntries(series('taskhub_socket_connections').map(([l, v]) => [l.channel, v]));
  const dropped = text.includes('# HELP taskhub_edge_dropped_total')
    ? Object.fromEntries(series('taskhub_edge_dropped_total').map(([l, v]) => [`${l.channel}/${l.reason}`, v]))
    : null;
  return { clients, dropped };
}

/** One TCP connection as `ss` sees it from one end: state, Recv-Q, Send-Q; undefined when gone. */
interface TcpEnd {
  state: string;
  recv_q: number;
  send_q: number;
}

async function tcpEnd(localPort: number, peerPort: number): Promise<TcpEnd | undefined> {
  const { stdout } = await run('ss', ['-tanH', `( sport = :${localPort} and dport = :${peerPort} )`]);
  const line = stdout.split('\n').find((l) => l.trim());
  if (!line) return undefined;
  const [state, recv, send] = line.trim().split(/\s+/);
  return { state, recv_q: Number(recv), send_q: Number(send) };
}

async function submitP50(h: ModeHub, key: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SUBMITS; i++) {
    const t = performance.now();
    await api(h.hub, key, 'POST', '/api/v1/tasks', { prompt: `edge-bench latency ${i}` });
    times.push(performance.now() - t);
  }
  return round(
    percentile(
      times.sort((a, b) => a - b),
      50,
    ),
  );
}

// ---------------------------------------------------------------- hubs

interface Keys {
  admin: string;
  client: string;
}

async function withHub<T>(fn: (h: ModeHub, keys: Keys) => Promise<T>): Promise<T & { database: string }> {
  const h = await startModeHub(MODE, 'taskhub_bench_edge', { env: { AUTH_REQUIRED: 'true' }, root: HUB_ROOT });
  try {
    const admin = await bootstrapAdminKey(h.hub, h.dataDir);
    const client = (
      await api<{ key: string }>(h.hub, admin, 'POST', '/api/v1/api-keys', { name: 'edge-bench', role: 'client' })
    ).key;
    // Warm up: the first requests of a process pay for compiling its paths.
    for (let i = 0; i < 20; i++) await api(h.hub, client, 'POST', '/api/v1/tasks', { prompt: 'edge-bench warm-up' });
    await sleep(1000);
    return { ...(await fn(h, { admin, client })), database: h.database };
  } finally {
    await h.close();
  }
}

// ---------------------------------------------------------------- 1. idle sockets

interface Held {
  socket: NetSocket;
  connectedAt: number;
  closedAt?: number;
  /** The status line the hub answered with before closing, if any. */
  answer?: string;
}

async function openIdle(port: number, partial: boolean): Promise<Held[]> {
  const held: Held[] = [];
  for (let i = 0; i < SOCKETS; i += 100) {
    await Promise.all(
      Array.from(
        { length: Math.min(100, SOCKETS - i) },
        () =>
          new Promise<void>((ok, fail) => {
            const socket = connect({ host: '127.0.0.1', port });
            const h: Held = { socket, connectedAt: 0 };
            socket.once('connect', () => {
              h.connectedAt = Date.now();
              if (partial) socket.write(PARTIAL_UPGRADE);
              held.push(h);
              ok();
            });
            socket.on('data', (d) => (h.answer ??= d.toString('latin1').split('\r\n')[0]));
            socket.on('error', (e) => h.connectedAt === 0 && fail(e)); // resets after a 408 are expected
            socket.once('close', () => (h.closedAt = Date.now()));
          }),
      ),
    );
  }
  return held;
}

async function idleRun(h: ModeHub, keys: Keys, partial: boolean): Promise<Record<string, unknown>> {
  const pid = hubPid(h);
  const rssBefore = rssMb(pid);
  const port = Number(new URL(h.hub.url).port);
  const held = await openIdle(port, partial);
  const t0 = Date.now(); // the last one connected
  await sleep(2000);
  const rssWith = rssMb(pid);
  const p50 = await submitP50(h, keys.client);
  const openAt: Record<string, number> = {};
  const rssAt: Record<string, number> = {};
  for (const s of CHECKPOINTS) {
    await sleep(Math.max(0, t0 + s * 1000 - Date.now()));
    openAt[`${s}s`] = held.filter((x) => x.closedAt === undefined).length;
    rssAt[`${s}s`] = rssMb(pid);
  }
  const lifetimes = held
    .filter((x) => x.closedAt !== undefined)
    .map((x) => ((x.closedAt as number) - x.connectedAt) / 1000)
    .sort((a, b) => a - b);
  const answers: Record<string, number> = {};
  for (const x of held) {
    const what = x.answer ?? (x.closedAt === undefined ? '(open at 30 s)' : '(closed, no answer)');
    answers[what] = (answers[what] ?? 0) + 1;
  }
  held.forEach((x) => x.socket.destroy());
  await sleep(1000);
  return {
    sockets: held.length,
    sent: partial ? JSON.stringify(PARTIAL_UPGRADE) : 'nothing',
    rss_before_mb: rssBefore,
    rss_with_mb: rssWith,
    rss_per_socket_kb: round(((rssWith - rssBefore) * 1024) / held.length, 1),
    submit_p50_ms_while_open: p50,
    open_after: openAt,
    rss_mb_after: rssAt,
    closed_by_hub: lifetimes.length,
    closed_after_s:
      lifetimes.length > 0
        ? {
            min: round(lifetimes[0], 1),
            p50: round(percentile(lifetimes, 50), 1),
            max: round(lifetimes.at(-1) as number, 1),
          }
        : null,
    answers,
    rss_after_closing_mb: rssMb(pid),
  };
}

async function idlePart(): Promise<Record<string, unknown>> {
  return withHub(async (h, keys) => {
    const rss = rssMb(hubPid(h));
    const p50 = await submitP50(h, keys.client);
    console.error(`idle: baseline RSS ${rss} MB, submit p50 ${p50} ms`);
    const silent = await idleRun(h, keys, false);
    console.error(`idle (a) silent: ${JSON.stringify(silent.open_after)}`);
    const partial = await idleRun(h, keys, true);
    console.error(`idle (b) partial upgrade: ${JSON.stringify(partial.open_after)}`);
    return { rss_baseline_mb: rss, submit_p50_ms_baseline: p50, silent, partial_upgrade: partial };
  });
}

// ---------------------------------------------------------------- 2. subscribers

/** What a subscriber (reading or not) saw of the stream. */
interface Subscriber {
  channel: 'events' | 'ws';
  ws: WebSocket;
  taskCreated: number;
  bytes: number;
  closed?: { code: number; reason: string; at: number };
  localPort: number;
  pause(): void;
  resume(): void;
}

function track(channel: 'events' | 'ws', ws: WebSocket, onText: (text: string) => void): Subscriber {
  const s: Subscriber = {
    channel,
    ws,
    taskCreated: 0,
    bytes: 0,
    localPort: 0,
    pause: () => (ws as unknown as { _socket: NetSocket })._socket.pause(),
    resume: () => (ws as unknown as { _socket: NetSocket })._socket.resume(),
  };
  ws.on('message', (raw: RawData) => {
    const text = raw.toString();
    s.bytes += Buffer.byteLength(text);
    onText(text);
  });
  ws.once('close', (code, reason) => (s.closed = { code, reason: reason.toString(), at: Date.now() }));
  ws.on('error', () => undefined);
  return s;
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

/** Waits for `pred` for up to `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * `/events` spoken directly (engine.io v4 over a WebSocket, Socket.IO packets): open, CONNECT to
 * /events with the key, `subscribe_tasks {all: true}` with an ack. It answers the hub's pings while
 * it reads, and has no timers of its own: paused, it neither reads nor closes.
 */
async function eventsSubscriber(h: ModeHub, key: string): Promise<Subscriber> {
  const ws = new WebSocket(`${h.hub.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  let connected = false;
  let acked = false;
  let refused: string | undefined;
  const s = track('events', ws, (text) => {
    if (text === '2')
      ws.send('3'); // ping → pong
    else if (text.startsWith('40/events,')) connected = true;
    else if (text.startsWith('44/events,')) refused = text;
    else if (text.startsWith('43/events,1[')) acked = true;
    else if (text.startsWith('42/events,["task_created"')) s.taskCreated++;
  });
  await opened(ws);
  ws.send(`40/events,${JSON.stringify({ token: key })}`);
  await until(() => connected || refused !== undefined, 5000, '/events CONNECT');
  if (refused) throw new Error(`/events refused the key: ${refused}`);
  ws.send(`42/events,1${JSON.stringify(['subscribe_tasks', { all: true }])}`);
  await until(() => acked, 5000, 'the subscribe_tasks ack');
  s.localPort = (ws as unknown as { _socket: NetSocket })._socket.localPort ?? 0;
  return s;
}

/** Raw `/ws?token=`: hears every task from the start. */
async function wsSubscriber(h: ModeHub, key: string): Promise<Subscriber> {
  const ws = new WebSocket(`${h.hub.url.replace('http', 'ws')}/ws?token=${encodeURIComponent(key)}`);
  let connected = false;
  const s = track('ws', ws, (text) => {
    if (text.startsWith('{"type":"connected"')) connected = true;
    else if (text.startsWith('{"type":"task_created"')) s.taskCreated++;
  });
  await opened(ws);
  await until(() => connected, 5000, 'the /ws connected frame');
  s.localPort = (ws as unknown as { _socket: NetSocket })._socket.localPort ?? 0;
  return s;
}

interface Sample {
  t: number;
  rss_mb: number;
  clients?: Record<string, number>;
  dropped?: Record<string, number> | null;
  hub_side?: TcpEnd | 'gone';
  client_side?: TcpEnd | 'gone';
}

/**
 * About 1,000 task_created a second: a batch of BATCH tasks every TICK_MS for LOAD_SECONDS, at
 * most 4 batches in flight (a tick with 4 waiting is skipped and counted).
 */
async function load(h: ModeHub, key: string): Promise<{ tasks: number; skipped_ticks: number; seconds: number }> {
  const prompt = `edge-bench ${'x'.repeat(Math.max(0, PROMPT_BYTES - 11))}`;
  const body = JSON.stringify({ tasks: Array.from({ length: BATCH }, () => ({ prompt })) });
  let tasks = 0;
  let skipped = 0;
  let inFlight = 0;
  const pending: Promise<void>[] = [];
  const started = performance.now();
  for (let tick = 0; tick < (LOAD_SECONDS * 1000) / TICK_MS; tick++) {
    await sleep(Math.max(0, started + tick * TICK_MS - performance.now()));
    if (inFlight >= 4) {
      skipped++;
      continue;
    }
    inFlight++;
    pending.push(
      fetch(`${h.hub.url}/api/v1/tasks/batch`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body,
      })
        .then(async (res) => {
          if (!res.ok) throw new Error(`batch: ${res.status} ${(await res.text()).slice(0, 500)}`);
          await res.arrayBuffer();
          tasks += BATCH;
        })
        .finally(() => inFlight--),
    );
  }
  await Promise.all(pending);
  return { tasks, skipped_ticks: skipped, seconds: round((performance.now() - started) / 1000, 1) };
}

async function subscriberPart(part: 'control' | 'events' | 'ws'): Promise<Record<string, unknown>> {
  return withHub(async (h, keys) => {
    const pid = hubPid(h);
    const hubPort = Number(new URL(h.hub.url).port);
    const subs =
      part === 'control'
        ? [await eventsSubscriber(h, keys.client), await wsSubscriber(h, keys.client)]
        : [part === 'events' ? await eventsSubscriber(h, keys.client) : await wsSubscriber(h, keys.client)];
    const never = part === 'control' ? undefined : subs[0];
    never?.pause();
    await sleep(2000);
    const before = { rss_mb: rssMb(pid), metrics: await scrape(h, keys.admin) };
    const samples: Sample[] = [];
    const t0 = performance.now();
    let sampling = true;
    const sampler = (async () => {
      for (let i = 1; sampling; i++) {
        await sleep(Math.max(0, t0 + i * 1000 - performance.now()));
        const m = await scrape(h, keys.admin);
        const sample: Sample = { t: round((performance.now() - t0) / 1000, 1), rss_mb: rssMb(pid) };
        if (m) {
          sample.clients = m.clients;
          sample.dropped = m.dropped;
        }
        if (never) {
          sample.hub_side = (await tcpEnd(hubPort, never.localPort)) ?? 'gone';
          sample.client_side = (await tcpEnd(never.localPort, hubPort)) ?? 'gone';
        }
        samples.push(sample);
      }
    })();
    const offered = await load(h, keys.client);
    await sleep(TAIL_SECONDS * 1000);
    sampling = false;
    await sampler;
    const end = { rss_mb: rssMb(pid), metrics: await scrape(h, keys.admin) };
    const rss = samples.map((s) => s.rss_mb);
    const peak = Math.max(before.rss_mb, ...rss);
    const result: Record<string, unknown> = {
      subscriber:
        part === 'control'
          ? 'a reading /events and a reading /ws subscriber'
          : `one never-reading ${part === 'events' ? '/events (Socket.IO)' : 'raw /ws'} subscriber`,
      load: { ...offered, events_per_s: round(offered.tasks / LOAD_SECONDS), prompt_bytes: PROMPT_BYTES },
      rss_before_mb: before.rss_mb,
      rss_peak_mb: peak,
      rss_peak_at_s: peak === before.rss_mb ? 0 : samples[rss.indexOf(peak)].t,
      rss_end_mb: end.rss_mb,
      metrics_before: before.metrics,
      metrics_end: end.metrics,
    };
    if (part === 'control') {
      result.received = Object.fromEntries(
        subs.map((s) => [
          s.channel,
          {
            task_created: s.taskCreated,
            mb: round(s.bytes / MB, 1),
            bytes_per_event: Math.round(s.bytes / Math.max(1, s.taskCreated)),
          },
        ]),
      );
    } else if (never) {
      const channel = never.channel;
      // When the hub let it go: its client gauge fell, its TCP end left ESTAB.
      const wasConnected = before.metrics?.clients[channel] ?? 1;
      const gaugeFell = samples.find((s) => s.clients && (s.clients[channel] ?? 0) < wasConnected);
      const tcpLeft = samples.find((s) => s.hub_side === 'gone' || (s.hub_side && s.hub_side.state !== 'ESTAB'));
      const droppedKeys = (m: Scrape | null | undefined): string[] => Object.keys(m?.dropped ?? {});
      const drops = Object.fromEntries(
        [...new Set([...droppedKeys(before.metrics), ...droppedKeys(end.metrics)])].map((k) => [
          k,
          (end.metrics?.dropped?.[k] ?? 0) - (before.metrics?.dropped?.[k] ?? 0),
        ]),
      );
      const maxSendQ = Math.max(0, ...samples.map((s) => (typeof s.hub_side === 'object' ? s.hub_side.send_q : 0)));
      const maxRecvQ = Math.max(
        0,
        ...samples.map((s) => (typeof s.client_side === 'object' ? s.client_side.recv_q : 0)),
      );
      const last = samples.at(-1);
      // Read again: what the hub still had for it, and how the stream ended.
      const readBefore = { events: never.taskCreated, bytes: never.bytes };
      never.resume();
      const resumedAt = Date.now();
      // Until the stream ends, or nothing more came for 1 s, at most RESUME_SECONDS.
      let seen = never.bytes;
      let quietSince = Date.now();
      while (!never.closed && Date.now() - quietSince < 1000 && Date.now() - resumedAt < RESUME_SECONDS * 1000) {
        await sleep(100);
        if (never.bytes !== seen) [seen, quietSince] = [never.bytes, Date.now()];
      }
      const readMb = (never.bytes - readBefore.bytes) / MB;
      const kernelAtEnd =
        (typeof last?.hub_side === 'object' ? last.hub_side.send_q : 0) +
        (typeof last?.client_side === 'object' ? last.client_side.recv_q : 0);
      result.dropped_by_hub = {
        edge_dropped_total_delta: end.metrics?.dropped === null ? 'no such metric' : drops,
        clients_gauge_fell_at_s: gaugeFell?.t ?? null,
        hub_tcp_left_established_at_s: tcpLeft?.t ?? null,
        hub_tcp_at_end: last?.hub_side ?? null,
      };
      result.kernel = { hub_send_q_max_mb: round(maxSendQ / MB, 2), client_recv_q_max_mb: round(maxRecvQ / MB, 2) };
      result.after_resume = {
        seconds: round((Date.now() - resumedAt) / 1000, 1),
        task_created_read: never.taskCreated - readBefore.events,
        mb_read: round(readMb, 1),
        // What came on top of the kernel's buffers (both ends) at the end of the load: what the
        // hub process itself still held for this subscriber.
        held_in_hub_mb: round(Math.max(0, readMb - kernelAtEnd / MB), 1),
        closed: never.closed
          ? {
              code: never.closed.code,
              reason: never.closed.reason,
              after_s: round((never.closed.at - resumedAt) / 1000, 1),
            }
          : 'still open',
      };
    }
    result.samples = samples;
    subs.forEach((s) => s.ws.terminate());
    return result;
  });
}

// ---------------------------------------------------------------- report

function table(title: string, rows: (string | number)[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  console.log(`\n${title}`);
  for (const [i, r] of rows.entries()) {
    console.log(r.map((v, c) => String(v).padEnd(widths[c])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

type Obj = Record<string, unknown>;

function report(out: Obj): void {
  const idle = out.idle as Obj | undefined;
  if (idle) {
    const rows: (string | number)[][] = [
      ['idle sockets', 'RSS before', 'RSS with', 'open 5 s / 20 s / 30 s', 'closed after', 'submit p50'],
      ['none', `${String(idle.rss_baseline_mb)} MB`, '', '', '', `${String(idle.submit_p50_ms_baseline)} ms`],
    ];
    for (const [name, r] of [
      [`(a) ${SOCKETS} silent`, idle.silent],
      [`(b) ${SOCKETS} partial upgrade`, idle.partial_upgrade],
    ] as [string, Obj][]) {
      const open = r.open_after as Record<string, number>;
      const closed = r.closed_after_s as { min: number; max: number } | null;
      rows.push([
        name,
        `${String(r.rss_before_mb)} MB`,
        `${String(r.rss_with_mb)} MB`,
        CHECKPOINTS.map((s) => open[`${s}s`]).join(' / '),
        closed ? `${closed.min}–${closed.max} s` : 'not closed',
        `${String(r.submit_p50_ms_while_open)} ms`,
      ]);
    }
    table('Idle unauthenticated sockets', rows);
  }
  const rows: (string | number)[][] = [
    ['subscriber', 'events/s', 'RSS before', 'peak (at)', 'end', 'dropped by the hub', 'read after the load'],
  ];
  for (const part of ['control', 'events', 'ws'] as const) {
    const r = out[part] as Obj | undefined;
    if (!r) continue;
    const loadInfo = r.load as { events_per_s: number };
    let dropped = '—';
    let resumed = '—';
    if (part !== 'control') {
      const d = r.dropped_by_hub as Obj;
      const delta = d.edge_dropped_total_delta;
      const counted =
        typeof delta === 'string'
          ? delta
          : Object.entries(delta as Record<string, number>)
              .filter(([, v]) => v > 0)
              .map(([k, v]) => `${k} +${v}`)
              .join(', ') || 'none counted';
      dropped =
        d.clients_gauge_fell_at_s === null
          ? `no (${counted})`
          : `at ${String(d.clients_gauge_fell_at_s)} s (${counted})`;
      const a = r.after_resume as Obj;
      const closed = a.closed as { code: number; reason: string } | string;
      const ending = typeof closed === 'string' ? closed : `closed ${closed.code} ${closed.reason}`.trim();
      resumed = `${String(a.mb_read)} MB (${String(a.held_in_hub_mb)} MB beyond the kernel's), ${ending}`;
    }
    rows.push([
      part === 'control' ? 'control (both reading)' : part === 'events' ? '/events never reads' : '/ws never reads',
      loadInfo.events_per_s,
      `${String(r.rss_before_mb)} MB`,
      `${String(r.rss_peak_mb)} MB (${String(r.rss_peak_at_s)} s)`,
      `${String(r.rss_end_mb)} MB`,
      dropped,
      resumed,
    ]);
  }
  if (rows.length > 1) table(`Never-reading subscriber, ${LOAD_SECONDS} s of load`, rows);
}

async function main(): Promise<void> {
  const commit = hubCommit();
  const outPath = resolve(argValue('out') ?? `artifacts/edge-footprint-${commit}.json`);
  const started = Date.now();
  const out: Obj = {
    workload: 'edge-footprint',
    hub: { root: HUB_ROOT, commit },
    mode: MODE,
    node: process.version,
    settings: {
      sockets: SOCKETS,
      load_seconds: LOAD_SECONDS,
      batch: BATCH,
      tick_ms: TICK_MS,
      prompt_bytes: PROMPT_BYTES,
    },
    load_avg_start: loadavg().map((l) => round(l)),
  };
  if (PARTS.includes('idle')) out.idle = await idlePart();
  for (const part of ['control', 'events', 'ws'] as const) {
    if (!PARTS.includes(part)) continue;
    out[part] = await subscriberPart(part);
    console.error(`${part}: done`);
  }
  out.load_avg_end = loadavg().map((l) => round(l));
  out.seconds = round((Date.now() - started) / 1000, 1);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`edge footprint: hub ${HUB_ROOT} (${commit}), ${MODE}, ${String(out.seconds)} s`);
  report(out);
  console.log(`\nJSON: ${outPath}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
