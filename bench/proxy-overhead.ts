// Agent-service WebSocket proxy overhead: the same echo agent (test/fixtures/echo-agent.mjs, a
// managed service of the hub) reached directly at its endpoint and through the hub's
// `/ws?service=…` proxy, in the same run. The anchor is the direct path: every proxied figure is
// reported beside the direct one and as a ratio proxied/direct.
//
//   npm run bench:proxy            (node dist/bench/proxy-overhead.js)
//
// Workloads (one JSON line each, then a short human summary):
//   proxy-rtt         1 connection, sequential 64-byte text echoes: p50/p99/mean per path
//   proxy-throughput  16 connections × 32 messages in flight: round trips/s per path, and the
//                     CPU of the hub, the agent and this load generator while it ran
//   proxy-large-frame 1 MiB binary echoes: p50 per path
// Paths are measured in A-B-B-A order (direct, proxied, proxied, direct; each block after its
// own warm-up) so drift of the shared machine lands on both sides alike.
//
// Settings (environment):
//   BENCH_RTT_SAMPLES (2000), BENCH_RTT_WARMUP (200 a block)
//   BENCH_TP_CONNECTIONS (16), BENCH_TP_WINDOW (32), BENCH_TP_SECONDS (5 a path), BENCH_TP_WARMUP (1 s a block)
//   BENCH_LARGE_BYTES (1048576), BENCH_LARGE_ROUNDS (20)
//   BENCH_DATABASE_URL  run the hub on this PostgreSQL database (dropped and re-created, exact
//                       name, which must contain "bench"); default: the default `npm start`, i.e.
//                       the hub's embedded PostgreSQL server in a temp DATA_DIR (removed afterwards)
//
// The hub runs as its own process (dist/src/main.js, AUTH_REQUIRED=true); the agent is its child.
// Both are stopped on exit: the hub with SIGTERM (which stops its managed services), and on
// Ctrl-C / SIGTERM of this process the agent is signalled directly as well.
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RawData, WebSocket } from 'ws';
import {
  api,
  bootstrapAdminKey,
  embeddedDatabaseUrl,
  freshDatabaseAt,
  Hub,
  percentile,
  round,
  serverVersion,
  sleep,
  stopEmbeddedHub,
  tempDataDir,
} from './lib/services.js';

const RTT_SAMPLES = Number(process.env.BENCH_RTT_SAMPLES ?? 2000);
const RTT_WARMUP = Number(process.env.BENCH_RTT_WARMUP ?? 200);
const TP_CONNECTIONS = Number(process.env.BENCH_TP_CONNECTIONS ?? 16);
const TP_WINDOW = Number(process.env.BENCH_TP_WINDOW ?? 32);
const TP_SECONDS = Number(process.env.BENCH_TP_SECONDS ?? 5);
const TP_WARMUP = Number(process.env.BENCH_TP_WARMUP ?? 1);
const LARGE_BYTES = Number(process.env.BENCH_LARGE_BYTES ?? 1024 * 1024);
const LARGE_ROUNDS = Number(process.env.BENCH_LARGE_ROUNDS ?? 20);
const LARGE_WARMUP = 2;
const MESSAGE_BYTES = 64;
const SERVICE = 'bench-echo';

type PathName = 'direct' | 'proxied';
/** A-B-B-A: each path measured twice, half the samples each time. */
const ORDER: PathName[] = ['direct', 'proxied', 'proxied', 'direct'];

interface Target {
  name: PathName;
  url: string;
}

/** The repository root: the nearest folder up from this file holding the echo fixture (dist/bench → root). */
function repoRoot(): string {
  const fixture = join('test', 'fixtures', 'echo-agent.mjs');
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, fixture))) return dir;
    if (dirname(dir) === dir) break;
  }
  if (existsSync(join(process.cwd(), fixture))) return process.cwd();
  throw new Error(`cannot find ${fixture} above ${fileURLToPath(import.meta.url)} or in ${process.cwd()}`);
}

/** utime + stime of a process in seconds (Linux /proc); NaN when it cannot be read. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Frames that arrived when no echo was awaited (reported; should stay 0). */
let unexpectedFrames = 0;

const asBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

/**
 * One client WebSocket. Proxied connections are ready after the hub's `connection_routed` frame,
 * which is checked and not counted; after that every frame must be an echo.
 */
class Conn {
  private handler: ((data: Buffer, binary: boolean) => void) | null = null;
  routed: Record<string, unknown> | null = null;

  private constructor(readonly ws: WebSocket) {}

  static async open(t: Target): Promise<Conn> {
    const ws = new WebSocket(t.url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    const conn = new Conn(ws);
    const firstFrame =
      t.name === 'proxied'
        ? new Promise<Buffer>((ok, fail) => {
            ws.once('message', (d) => ok(asBuffer(d)));
            ws.once('close', (code, reason) =>
              fail(new Error(`${t.name}: closed before connection_routed (${code} ${reason.toString()})`)),
            );
          })
        : null;
    firstFrame?.catch(() => undefined); // awaited below; an early close must not be unhandled
    await new Promise<void>((ok, fail) => {
      ws.once('open', () => ok());
      ws.once('error', (e) => fail(new Error(`${t.name} ${t.url.replace(/token=[^&]+/, 'token=…')}: ${e.message}`)));
    });
    ws.on('error', (e) => console.error(`${t.name} connection error: ${e.message}`));
    if (firstFrame) {
      const routed = JSON.parse((await firstFrame).toString()) as { event?: string; data?: Record<string, unknown> };
      if (routed.event !== 'connection_routed')
        throw new Error(`proxied: expected connection_routed first, got ${JSON.stringify(routed).slice(0, 300)}`);
      conn.routed = routed.data ?? {};
    }
    ws.on('message', (d, isBinary) => {
      const h = conn.handler;
      if (h) return h(asBuffer(d), isBinary);
      unexpectedFrames++;
      console.error(`${t.name}: unexpected frame ${asBuffer(d).subarray(0, 100).toString()}`);
    });
    return conn;
  }

  onFrame(h: ((data: Buffer, binary: boolean) => void) | null): void {
    this.handler = h;
  }

  /** Sends one frame and resolves with the echo's round-trip time in ms (checked byte for byte). */
  roundTrip(payload: Buffer, binary: boolean): Promise<number> {
    return new Promise((ok, fail) => {
      const t0 = performance.now();
      this.handler = (data, isBinary) => {
        const ms = performance.now() - t0;
        this.handler = null;
        if (isBinary !== binary || !data.equals(payload))
          fail(new Error(`echo differs (${data.length} bytes back for ${payload.length}, binary ${isBinary})`));
        else ok(ms);
      };
      this.ws.send(payload, { binary });
    });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((done) => {
      const t = setTimeout(() => {
        this.ws.terminate();
        done();
      }, 2000);
      this.ws.once('close', () => {
        clearTimeout(t);
        done();
      });
      this.ws.close(1000, 'bench done');
    });
  }
}

/** A 64-byte text payload that names its connection and sequence number. */
const textPayload = (conn: number, seq: number): Buffer => Buffer.from(`c${conn}:s${seq}:`.padEnd(MESSAGE_BYTES, '.'));

function stats(samples: number[]): {
  samples: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  min_ms: number;
  max_ms: number;
} {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    samples: s.length,
    p50_ms: round(percentile(s, 50), 3),
    p99_ms: round(percentile(s, 99), 3),
    mean_ms: round(mean, 3),
    min_ms: round(s[0], 3),
    max_ms: round(s[s.length - 1], 3),
  };
}

const ratio = (proxied: number, direct: number): number => round(proxied / direct, 2);

// ---------------------------------------------------------------- workload 1: round-trip latency

async function rtt(targets: Record<PathName, Target>): Promise<Record<PathName, number[]>> {
  const conns = { direct: await Conn.open(targets.direct), proxied: await Conn.open(targets.proxied) };
  const out: Record<PathName, number[]> = { direct: [], proxied: [] };
  const perBlock = Math.ceil(RTT_SAMPLES / 2);
  let seq = 0;
  try {
    for (const path of ORDER) {
      const c = conns[path];
      for (let i = 0; i < RTT_WARMUP; i++) await c.roundTrip(textPayload(0, seq++), false);
      const want = Math.min(perBlock, RTT_SAMPLES - out[path].length);
      for (let i = 0; i < want; i++) out[path].push(await c.roundTrip(textPayload(0, seq++), false));
    }
  } finally {
    await Promise.all([conns.direct.close(), conns.proxied.close()]);
  }
  return out;
}

// ---------------------------------------------------------------- workload 2: throughput

interface TpSegment {
  echoes: number;
  seconds: number;
  hubCpu: number;
  agentCpu: number;
  selfCpu: number;
}
interface TpResult {
  echoes: number;
  seconds: number;
  sent: number;
  received: number;
  mismatches: number;
  lost: number;
  hubCpu: number;
  agentCpu: number;
  selfCpu: number;
}

/**
 * Keeps TP_WINDOW messages in flight on each connection (every echo sends the next) for the
 * warm-up and then `seconds`; counts the echoes that arrive inside the measured window. Echoes
 * must come back in order, byte for byte; afterwards the windows drain and nothing may be missing.
 */
async function loadBlock(
  conns: Conn[],
  seconds: number,
  pids: { hub?: number; agent: number },
  totals: TpResult,
): Promise<TpSegment> {
  let phase: 'warmup' | 'measure' | 'drain' = 'warmup';
  let counted = 0;
  let outstanding = 0;
  let drained: (() => void) | null = null;
  conns.forEach((c, ci) => {
    const queue: Buffer[] = [];
    let seq = 0;
    const sendNext = (): void => {
      const p = textPayload(ci, seq++);
      queue.push(p);
      outstanding++;
      totals.sent++;
      c.ws.send(p, { binary: false });
    };
    c.onFrame((data) => {
      const expected = queue.shift();
      outstanding--;
      totals.received++;
      if (!expected || !data.equals(expected)) totals.mismatches++;
      if (phase === 'measure') counted++;
      if (phase !== 'drain') sendNext();
      else if (outstanding === 0) drained?.();
    });
    for (let i = 0; i < TP_WINDOW; i++) sendNext();
  });
  await sleep(TP_WARMUP * 1000);
  const cpu0 = { hub: cpuSeconds(pids.hub), agent: cpuSeconds(pids.agent), self: selfCpuSeconds() };
  const t0 = performance.now();
  phase = 'measure';
  await sleep(seconds * 1000);
  phase = 'drain';
  const wall = (performance.now() - t0) / 1000;
  const seg: TpSegment = {
    echoes: counted,
    seconds: wall,
    hubCpu: cpuSeconds(pids.hub) - cpu0.hub,
    agentCpu: cpuSeconds(pids.agent) - cpu0.agent,
    selfCpu: selfCpuSeconds() - cpu0.self,
  };
  if (outstanding > 0) {
    await Promise.race([new Promise<void>((r) => (drained = r)), sleep(10_000)]);
  }
  totals.lost += outstanding;
  conns.forEach((c) => c.onFrame(null));
  return seg;
}

async function throughput(
  targets: Record<PathName, Target>,
  pids: { hub?: number; agent: number },
): Promise<Record<PathName, TpResult>> {
  const open = async (t: Target): Promise<Conn[]> =>
    Promise.all(Array.from({ length: TP_CONNECTIONS }, () => Conn.open(t)));
  const conns = { direct: await open(targets.direct), proxied: await open(targets.proxied) };
  const empty = (): TpResult => ({
    echoes: 0,
    seconds: 0,
    sent: 0,
    received: 0,
    mismatches: 0,
    lost: 0,
    hubCpu: 0,
    agentCpu: 0,
    selfCpu: 0,
  });
  const out: Record<PathName, TpResult> = { direct: empty(), proxied: empty() };
  try {
    for (const path of ORDER) {
      const seg = await loadBlock(conns[path], TP_SECONDS / 2, pids, out[path]);
      const r = out[path];
      r.echoes += seg.echoes;
      r.seconds += seg.seconds;
      r.hubCpu += seg.hubCpu;
      r.agentCpu += seg.agentCpu;
      r.selfCpu += seg.selfCpu;
    }
  } finally {
    await Promise.all([...conns.direct, ...conns.proxied].map((c) => c.close()));
  }
  return out;
}

// ---------------------------------------------------------------- workload 3: large frames

async function largeFrames(targets: Record<PathName, Target>): Promise<Record<PathName, number[]>> {
  const conns = { direct: await Conn.open(targets.direct), proxied: await Conn.open(targets.proxied) };
  const payload = Buffer.alloc(LARGE_BYTES);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
  const out: Record<PathName, number[]> = { direct: [], proxied: [] };
  const perBlock = Math.ceil(LARGE_ROUNDS / 2);
  try {
    for (const path of ORDER) {
      const c = conns[path];
      for (let i = 0; i < LARGE_WARMUP; i++) await c.roundTrip(payload, true);
      const want = Math.min(perBlock, LARGE_ROUNDS - out[path].length);
      for (let i = 0; i < want; i++) out[path].push(await c.roundTrip(payload, true));
    }
  } finally {
    await Promise.all([conns.direct.close(), conns.proxied.close()]);
  }
  return out;
}

// ---------------------------------------------------------------- hub and agent

interface StartedService {
  endpoint: string;
  pid: number;
  port: number;
}

async function main(): Promise<void> {
  const root = repoRoot();
  const agentPath = join(root, 'test', 'fixtures', 'echo-agent.mjs');
  const load = loadavg().map((l) => round(l));

  let env: Record<string, string>;
  let database: string;
  let dataDir: string | undefined;
  const dbUrl = process.env.BENCH_DATABASE_URL;
  if (dbUrl) {
    env = { DATABASE_URL: await freshDatabaseAt(dbUrl) };
    database = 'PostgreSQL';
  } else {
    dataDir = tempDataDir('taskhub_bench_proxy-');
    env = { DATABASE_URL: '', DATA_DIR: dataDir };
    database = 'embedded PostgreSQL';
  }

  // Auth on, as in production: the proxy checks the client key on every upgrade.
  const hub = new Hub({ ...env, AUTH_REQUIRED: 'true' });
  let agentPid: number | undefined;
  // bench/lib/services.ts SIGKILLs the hub on Ctrl-C / SIGTERM, which would leave its agent
  // running: signal the agent first (prepended, so it runs before that handler exits).
  const killAgent = (): void => {
    if (agentPid && alive(agentPid)) process.kill(agentPid, 'SIGTERM');
  };
  process.prependListener('SIGINT', killAgent);
  process.prependListener('SIGTERM', killAgent);
  process.once('exit', killAgent);

  try {
    await hub.start();
    database = `${database} ${await serverVersion(dataDir ? embeddedDatabaseUrl(dataDir) : env.DATABASE_URL)}`;
    const adminKey = await bootstrapAdminKey(hub, dataDir);
    const clientKey = (
      await api<{ key: string }>(hub, adminKey, 'POST', '/api/v1/api-keys', {
        name: 'bench-proxy-client',
        role: 'client',
      })
    ).key;
    await api(hub, adminKey, 'POST', '/api/v1/services', {
      name: SERVICE,
      agent_factory_path: agentPath,
      port: 0,
      env: { ECHO_QUIET: '1' },
      health_check: { type: 'ws', interval: 5, timeout: 2 },
      // Relayed untouched: the overhead measured is the proxy's, not the seed's metadata wrapping (on by default).
      config: { max_sessions: 1000, proxy_metadata: false },
    });
    const started = await api<StartedService>(hub, adminKey, 'POST', `/api/v1/services/${SERVICE}/start`);
    if (!started.endpoint) throw new Error(`start answered without an endpoint: ${JSON.stringify(started)}`);
    agentPid = started.pid;
    const hubWs = hub.url.replace(/^http/, 'ws');
    const targets: Record<PathName, Target> = {
      direct: { name: 'direct', url: started.endpoint },
      proxied: {
        name: 'proxied',
        url: `${hubWs}/ws?service=${encodeURIComponent(SERVICE)}&token=${encodeURIComponent(clientKey)}`,
      },
    };
    const common = {
      database,
      hub_auth: true,
      agent: 'test/fixtures/echo-agent.mjs (ws, ECHO_QUIET=1)',
      order: ORDER.join(','),
      loadavg_at_start: load,
    };

    // 1. Round-trip latency.
    const lat = await rtt(targets);
    const d1 = stats(lat.direct);
    const p1 = stats(lat.proxied);
    const rttLine = {
      workload: 'proxy-rtt',
      message_bytes: MESSAGE_BYTES,
      warmup_per_block: RTT_WARMUP,
      direct: d1,
      proxied: p1,
      ratio_p50: ratio(p1.p50_ms, d1.p50_ms),
      ratio_p99: ratio(p1.p99_ms, d1.p99_ms),
      added_p50_ms: round(p1.p50_ms - d1.p50_ms, 3),
      ...common,
    };
    console.log(JSON.stringify(rttLine));

    // 2. Throughput.
    const tp = await throughput(targets, { hub: hub.pid, agent: started.pid });
    const tpView = (r: TpResult): Record<string, number> => ({
      round_trips_per_s: round(r.echoes / r.seconds, 0),
      measured_s: round(r.seconds, 2),
      round_trips: r.echoes,
      sent: r.sent,
      echoed: r.received,
      lost: r.lost,
      mismatches: r.mismatches,
      hub_cpu_pct: round((r.hubCpu / r.seconds) * 100, 1),
      agent_cpu_pct: round((r.agentCpu / r.seconds) * 100, 1),
      loadgen_cpu_pct: round((r.selfCpu / r.seconds) * 100, 1),
    });
    const d2 = tpView(tp.direct);
    const p2 = tpView(tp.proxied);
    const tpLine = {
      workload: 'proxy-throughput',
      connections: TP_CONNECTIONS,
      window: TP_WINDOW,
      message_bytes: MESSAGE_BYTES,
      warmup_s_per_block: TP_WARMUP,
      direct: d2,
      proxied: p2,
      ratio: ratio(p2.round_trips_per_s, d2.round_trips_per_s),
      note: 'cpu_pct: percent of one core over the measured seconds; hub_cpu_pct on the direct path is the idle hub',
      ...common,
    };
    console.log(JSON.stringify(tpLine));

    // 3. Large frames.
    const big = await largeFrames(targets);
    const d3 = stats(big.direct);
    const p3 = stats(big.proxied);
    const mbps = (ms: number): number => round((2 * LARGE_BYTES) / 1024 / 1024 / (ms / 1000), 1);
    const bigLine = {
      workload: 'proxy-large-frame',
      frame_bytes: LARGE_BYTES,
      binary: true,
      direct: { ...d3, mib_per_s_at_p50: mbps(d3.p50_ms) },
      proxied: { ...p3, mib_per_s_at_p50: mbps(p3.p50_ms) },
      ratio_p50: ratio(p3.p50_ms, d3.p50_ms),
      added_p50_ms: round(p3.p50_ms - d3.p50_ms, 3),
      ...common,
    };
    console.log(JSON.stringify(bigLine));

    const problems = [tp.direct, tp.proxied].reduce((n, r) => n + r.lost + r.mismatches, 0) + unexpectedFrames;
    console.log(
      [
        `proxy overhead (${database}, hub pid ${hub.pid}, agent pid ${started.pid}, load ${load.join(' ')}):`,
        `  rtt 64 B      direct p50 ${d1.p50_ms} ms p99 ${d1.p99_ms} ms | proxied p50 ${p1.p50_ms} ms p99 ${p1.p99_ms} ms | ×${rttLine.ratio_p50} p50, ×${rttLine.ratio_p99} p99`,
        `  throughput    direct ${d2.round_trips_per_s}/s | proxied ${p2.round_trips_per_s}/s | ×${tpLine.ratio} (hub ${p2.hub_cpu_pct}% of a core while proxying)`,
        `  1 MiB frames  direct p50 ${d3.p50_ms} ms | proxied p50 ${p3.p50_ms} ms | ×${bigLine.ratio_p50}`,
        problems > 0
          ? `  WARNING: ${problems} echoes lost, out of order or unexpected (${unexpectedFrames} unexpected frames)`
          : '  every echo came back, in order, byte for byte',
      ].join('\n'),
    );
  } catch (e) {
    if (hub.log) console.error(`hub output (tail):\n${hub.log.slice(-4000)}`);
    throw e;
  } finally {
    // SIGTERM: the hub stops its managed services (and its embedded PostgreSQL), then exits.
    if (dataDir) {
      const teardown = await stopEmbeddedHub(hub, dataDir);
      if (!teardown.data_dir_removed || teardown.leftover_postgres_pids?.length)
        console.error(`embedded PostgreSQL teardown incomplete: ${JSON.stringify(teardown)}`);
    } else {
      await hub.stop();
    }
    if (agentPid !== undefined) {
      for (let i = 0; i < 20 && alive(agentPid); i++) await sleep(100);
      if (alive(agentPid)) {
        console.error(`agent pid ${agentPid} still running after the hub stopped; sending SIGTERM`);
        killAgent();
      }
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
