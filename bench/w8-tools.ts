// W8-tools (issue 26): what the hub adds to a one-tool chat turn. The client sends
// POST /v1/chat/completions naming the tool `lookup` ({type:'function', function:{name:'lookup'}});
// the fake provider (test/support/fake-llm-provider.ts, its own process via
// bench/lib/fake-llm-server.ts) answers with a tool call; the hub submits a task, a raw-WebSocket
// Apex node in this process (/abp-distributed-server, declaring `lookup` in node_register) gets
// task_assign, acks and answers task_result; the hub calls the model again with the tool message
// and returns the final answer (`tool said: <result>`).
//
// The baseline is what a client that ran the tool itself would pay without the hub, measured in
// the same run, alternating with the hub (rounds A-B, B-A, …): the same two model calls straight
// to the provider (call 1 → tool call; call 2 with the assistant's tool call and the tool message
// appended) and the same tool function between them (the node's own time). So
//
//   added = hub turn − (two direct model calls + node time)
//
// is read off the two paths' p50 and p99. Target (issue 26): added ≤ 5 ms p50 on this machine.
//
//   npm run bench:w8-tools         (node dist/bench/w8-tools.js [--mode=embedded|postgres|both])
//
// For each node time (BENCH_NODE_DELAYS, default 0 and 20 ms: the node answers at once, or after
// a 20 ms timer — the baseline's tool waits the same timer):
//   W8-tools-nonstream   sequential non-stream turns: p50/p99 per path, added p50/p99, hub CPU per turn
//   W8-tools-stream      sequential streamed turns (include_usage): time from the request to the
//                        first data: frame with non-empty delta.content of the final answer (TTFT),
//                        p50/p99 per path, added; and time to data: [DONE]
//   W8-tools-throughput  BENCH_TP_CONCURRENCY closed-loop clients of non-stream turns: turns/s per
//                        path, and the CPU of the hub (and, embedded, of its PostgreSQL) per turn
// The provider answers at once (firstByteDelayMs 0, dripMs 0). Every answer is checked (the final
// text quotes the node's result), and at the end the tasks table is: one completed `lookup` task
// per hub turn answered, nothing else; the node got exactly one task_assign per task.
//
// Settings (environment):
//   BENCH_SAMPLES (200 a path, workload and node time), BENCH_ROUNDS (10), BENCH_WARMUP (30 a path)
//   BENCH_NODE_DELAYS (0,20 ms), BENCH_STREAM (1; 0 skips the stream workload)
//   BENCH_TP_CONCURRENCY (16), BENCH_TP_SECONDS (4 a path, over BENCH_TP_ROUNDS=2 blocks),
//   BENCH_TP_WARMUP (1 s a path before the first block)
//   --mode / BENCH_MODE  embedded (default here), postgres (a fresh database on the local
//                        PostgreSQL, or BENCH_DATABASE_URL re-created), both
//
// The hub runs as W8's: LLM_PROVIDERS=[{"name":"fake",…,"models":["fake-model"]}],
// AUTH_REQUIRED=false, RATE_LIMIT_MAX=0 (the node's VCP_Key is then not checked). The JSON of the
// run goes to artifacts/w8-tools-<commit>.json (--out=<path> to choose), one JSON line per
// workload is printed as well, then a table.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import WebSocket from 'ws';
import {
  childPids,
  embeddedPostmasterPid,
  type HubMode,
  percentile,
  round,
  selectedModes,
  sleep,
  startModeHub,
  type Teardown,
} from './lib/services.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 30);
const NODE_DELAYS = (process.env.BENCH_NODE_DELAYS ?? '0,20').split(',').filter(Boolean).map(Number);
const STREAM = process.env.BENCH_STREAM !== '0';
const TP_CONCURRENCY = Number(process.env.BENCH_TP_CONCURRENCY ?? 16);
const TP_SECONDS = Number(process.env.BENCH_TP_SECONDS ?? 4);
const TP_ROUNDS = Number(process.env.BENCH_TP_ROUNDS ?? 2);
const TP_WARMUP = Number(process.env.BENCH_TP_WARMUP ?? 1);
const MODEL = 'fake-model';
// The fake answers a tool call when the request has tools and the last user message says "call tool".
const PROMPT = 'call tool lookup for the added time of the hub on this turn';
const NODE_ID = 'bench-w8-tools-node';
/** The tool as the node declares it; the baseline client sends this definition itself. */
const LOOKUP = {
  name: 'lookup',
  description: 'Looks a phrase up',
  parameters: { type: 'object', properties: { input: { type: 'string' } } },
};
/** The node's tool: the same function on the node and in the baseline client. */
const toolResult = (args: { input?: unknown }): { answer: string } => ({ answer: `found ${String(args.input)}` });
/** What the model reads after the tool, and so the final answer of a turn (fake-llm-replies.ts). */
const TOOL_CONTENT = JSON.stringify(toolResult({ input: PROMPT }));
const EXPECTED = `tool said: ${TOOL_CONTENT}`;
// Issue 26, verbatim: "added time over the two model calls and the node's own time (target ≤ 5 ms p50 on this machine)".
const TARGET = { added_p50_ms: 5 };
/** Without --mode / BENCH_MODE: embedded only (the default `npm start`). */
const MODES: HubMode[] =
  process.argv.some((a) => a.startsWith('--mode=')) || process.env.BENCH_MODE ? selectedModes() : ['embedded'];

type PathName = 'direct' | 'hub';

interface Target {
  name: PathName;
  url: URL;
  agent: Agent;
}

interface Paths {
  direct: Target;
  hub: Target;
}

// ---------------------------------------------------------------- processes (as w8-llm.ts)

/** The repository root: the nearest folder up from this file holding package.json (dist/bench → root). */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
  }
  return process.cwd();
}

function commitOf(root: string): string {
  try {
    const rev = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${rev}-dirty` : rev;
  } catch {
    return 'unknown';
  }
}

/** The fake provider as its own process; resolves with its base URL (…/v1) once it prints READY. */
async function startProvider(): Promise<{ child: ChildProcess; url: string }> {
  const script = join(repoRoot(), 'dist', 'bench', 'lib', 'fake-llm-server.js');
  const child = spawn(
    process.execPath,
    [script, '--port=0', `--models=${MODEL}`, '--behavior={"firstByteDelayMs":0,"dripMs":0}'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`fake provider not READY after 10 s:\n${out}`)), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        ok(m[1]);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => fail(new Error(`fake provider exited with ${code}:\n${out}`)));
  });
  return { child, url };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      done();
    });
    child.kill('SIGTERM');
  });
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

/**
 * CPU of the embedded PostgreSQL (postmaster and its processes, as listed when the meter is
 * made: the hub's pool keeps its backends). Undefined for the shared local server, whose CPU is
 * not the bench's alone.
 */
function dbCpuMeter(dataDir: string | undefined): (() => number) | undefined {
  const postmaster = dataDir ? embeddedPostmasterPid(dataDir) : undefined;
  if (postmaster === undefined) return undefined;
  const pids = [postmaster, ...childPids(postmaster)];
  return () => pids.map(cpuSeconds).reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0);
}

// ---------------------------------------------------------------- the node

/**
 * A raw-WebSocket Apex node offering `lookup` (seed 001 node channel): every task_assign is
 * acknowledged, then answered with task_result after `delayMs` (0: in the same tick). It counts
 * assigns per task (a second assign of a task would be a re-dispatch) and its own time per task.
 */
class ToolNode {
  delayMs = 0;
  assigns = 0;
  duplicateAssigns = 0;
  readonly ownMs: number[] = [];
  private readonly seen = new Set<string>();

  private constructor(private readonly ws: WebSocket) {}

  static async connect(hubUrl: string): Promise<ToolNode> {
    const ws = new WebSocket(`${hubUrl.replace('http', 'ws')}/abp-distributed-server/VCP_Key=bench`, {
      perMessageDeflate: false,
    });
    await new Promise<void>((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    const node = new ToolNode(ws);
    const registered = new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error('node_register: no answer within 10 s')), 10_000);
      ws.on('message', (raw: Buffer) => {
        const f = JSON.parse(raw.toString()) as { type: string; id?: string; data?: Record<string, unknown> };
        if (f.id === 'r1') {
          clearTimeout(t);
          if (f.type === 'register_success') ok();
          else fail(new Error(`node_register answered ${JSON.stringify(f).slice(0, 500)}`));
        } else if (f.type === 'task_assign') node.onAssign(f.id as string, f.data as unknown as AssignData);
      });
    });
    ws.send(
      JSON.stringify({
        type: 'node_register',
        id: 'r1',
        data: { node_id: NODE_ID, capacity: Math.max(64, TP_CONCURRENCY * 2), tools: [LOOKUP] },
      }),
    );
    await registered;
    return node;
  }

  private onAssign(id: string, data: AssignData): void {
    const t0 = performance.now();
    this.assigns++;
    if (this.seen.has(data.task_id)) this.duplicateAssigns++;
    this.seen.add(data.task_id);
    this.ws.send(JSON.stringify({ type: 'ack', id }));
    const answer = (): void => {
      const result = toolResult(data.payload ?? {});
      this.ownMs.push(performance.now() - t0);
      this.ws.send(
        JSON.stringify({
          type: 'task_result',
          data: { task_id: data.task_id, attempt: data.attempt, status: 'success', result },
        }),
      );
    };
    if (this.delayMs > 0) setTimeout(answer, this.delayMs);
    else answer();
  }

  close(): void {
    this.ws.close();
  }
}

interface AssignData {
  task_id: string;
  attempt: number;
  action: string;
  payload?: { input?: unknown };
}

/** The baseline client's run of the same tool, with the same timer; its own time is recorded. */
async function runToolLocally(args: { input?: unknown }, delayMs: number, ownMs: number[]): Promise<string> {
  const t0 = performance.now();
  if (delayMs > 0) await sleep(delayMs);
  const content = JSON.stringify(toolResult(args));
  ownMs.push(performance.now() - t0);
  return content;
}

// ---------------------------------------------------------------- HTTP

interface Answer {
  status: number;
  /** ms from `t0` (the turn's start) to the end of the answer. */
  totalMs: number;
  /** Stream: ms from `t0` to the first frame with non-empty delta.content. */
  ttftMs?: number;
  body: string;
}

/** Whether `text` holds a complete `data:` frame whose delta has non-empty content. */
function hasContentFrame(text: string): boolean {
  const frames = text.split('\n\n');
  frames.pop(); // what follows the last blank line: not a complete frame yet
  for (const frame of frames) {
    if (!frame.startsWith('data: ') || frame === 'data: [DONE]') continue;
    try {
      const c = JSON.parse(frame.slice(6)) as { choices?: { delta?: { content?: string | null } }[] };
      if (c.choices?.[0]?.delta?.content) return true;
    } catch {
      /* a frame cut in two: the rest comes with the next data */
    }
  }
  return false;
}

function post(t: Target, payload: string, stream: boolean, t0 = performance.now()): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = request(
      t.url,
      {
        method: 'POST',
        agent: t.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: 'Bearer x',
        },
      },
      (res) => {
        let body = '';
        let ttftMs: number | undefined;
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          if (stream && ttftMs === undefined && hasContentFrame(body)) ttftMs = performance.now() - t0;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, totalMs: performance.now() - t0, ttftMs, body }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

const streamFields = (stream: boolean): Record<string, unknown> =>
  stream ? { stream: true, stream_options: { include_usage: true } } : {};

const USER = { role: 'user', content: PROMPT };
/** The hub's request names the tool only: the hub fills in the node's definition. */
const HUB_BODIES = {
  plain: JSON.stringify({
    model: MODEL,
    messages: [USER],
    tools: [{ type: 'function', function: { name: 'lookup' } }],
  }),
  stream: JSON.stringify({
    model: MODEL,
    messages: [USER],
    tools: [{ type: 'function', function: { name: 'lookup' } }],
    ...streamFields(true),
  }),
};
const DIRECT_TOOLS = [{ type: 'function', function: LOOKUP }];

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The tool call of a non-stream answer, or of a stream's frames (id and name first, arguments in fragments). */
function toolCallOf(a: Answer, stream: boolean): ToolCall | undefined {
  if (a.status !== 200) return undefined;
  try {
    if (!stream) {
      const body = JSON.parse(a.body) as { choices?: { message?: { tool_calls?: ToolCall[] } }[] };
      return body.choices?.[0]?.message?.tool_calls?.[0];
    }
    let call: ToolCall | undefined;
    for (const frame of a.body.split('\n\n')) {
      if (!frame.startsWith('data: ') || frame === 'data: [DONE]') continue;
      const c = JSON.parse(frame.slice(6)) as {
        choices?: { delta?: { tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[] } }[];
      };
      const d = c.choices?.[0]?.delta?.tool_calls?.[0];
      if (!d) continue;
      if (d.id) call = { id: d.id, type: 'function', function: { name: d.function?.name ?? '', arguments: '' } };
      if (call && d.function?.arguments) call.function.arguments += d.function.arguments;
    }
    return call;
  } catch {
    return undefined;
  }
}

/** Whether an answer is the turn's final reply, whole: the text, and for a stream the usage chunk and [DONE]. */
function answerOk(a: Answer, stream: boolean): boolean {
  if (a.status !== 200) return false;
  if (!stream) {
    try {
      return (
        (JSON.parse(a.body) as { choices?: { message?: { content?: string } }[] }).choices?.[0]?.message?.content ===
        EXPECTED
      );
    } catch {
      return false;
    }
  }
  let content = '';
  let usage = false;
  for (const frame of a.body.split('\n\n')) {
    if (!frame.startsWith('data: ') || frame === 'data: [DONE]') continue;
    let c: { choices?: { delta?: { content?: string | null } }[]; usage?: unknown };
    try {
      c = JSON.parse(frame.slice(6)) as typeof c;
    } catch {
      return false;
    }
    content += c.choices?.[0]?.delta?.content ?? '';
    if (c.choices?.length === 0 && c.usage) usage = true;
  }
  return content === EXPECTED && usage && a.body.trimEnd().endsWith('data: [DONE]') && a.ttftMs !== undefined;
}

/** Counts of hub turns, for the check against the tasks table. */
const hubTurns = { sent: 0, ok: 0 };

/** One turn through the hub: one request. */
async function hubTurn(t: Target, stream: boolean): Promise<Answer> {
  hubTurns.sent++;
  const a = await post(t, stream ? HUB_BODIES.stream : HUB_BODIES.plain, stream);
  if (answerOk(a, stream)) hubTurns.ok++;
  return a;
}

/**
 * One turn without the hub: call 1 (the model answers with a tool call), the tool run here with
 * the node's timer, call 2 with the assistant's tool call and the tool message appended. Times
 * (and TTFT) run from before call 1.
 */
async function directTurn(t: Target, stream: boolean, delayMs: number, ownMs: number[]): Promise<Answer> {
  const t0 = performance.now();
  const first = await post(
    t,
    JSON.stringify({ model: MODEL, messages: [USER], tools: DIRECT_TOOLS, ...streamFields(stream) }),
    stream,
    t0,
  );
  const call = toolCallOf(first, stream);
  if (!call) return { ...first, status: first.status === 200 ? 502 : first.status, ttftMs: undefined };
  const content = await runToolLocally(JSON.parse(call.function.arguments) as { input?: unknown }, delayMs, ownMs);
  return post(
    t,
    JSON.stringify({
      model: MODEL,
      messages: [
        USER,
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content },
      ],
      tools: DIRECT_TOOLS,
      ...streamFields(stream),
    }),
    stream,
    t0,
  );
}

// ---------------------------------------------------------------- workloads

interface Sequential {
  samples: number[];
  totals: number[];
  errors: number;
  /** Hub CPU seconds over this path's blocks (the hub idles on the direct path). */
  hubCpu: number;
}

interface Ctx {
  paths: Paths;
  node: ToolNode;
  delayMs: number;
  /** The baseline tool's own times. */
  localMs: number[];
  hubPid?: number;
  providerPid?: number;
  dbCpu?: () => number;
  databaseUrl: string;
}

const turn = (c: Ctx, t: Target, stream: boolean): Promise<Answer> =>
  t.name === 'hub' ? hubTurn(t, stream) : directTurn(t, stream, c.delayMs, c.localMs);

/** Rounds alternate which path goes first (A-B, B-A, …); each round takes SAMPLES/ROUNDS per path. */
const roundOrder = (paths: Paths, r: number): Target[] =>
  r % 2 === 0 ? [paths.direct, paths.hub] : [paths.hub, paths.direct];

async function sequential(c: Ctx, stream: boolean): Promise<Record<PathName, Sequential>> {
  const empty = (): Sequential => ({ samples: [], totals: [], errors: 0, hubCpu: 0 });
  const out: Record<PathName, Sequential> = { direct: empty(), hub: empty() };
  for (const t of roundOrder(c.paths, 0)) for (let i = 0; i < WARMUP; i++) await turn(c, t, stream);
  const perRound = Math.ceil(SAMPLES / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of roundOrder(c.paths, r)) {
      const o = out[t.name];
      const want = Math.min(perRound, SAMPLES - o.samples.length - o.errors);
      const cpu0 = cpuSeconds(c.hubPid);
      for (let i = 0; i < want; i++) {
        const a = await turn(c, t, stream);
        if (!answerOk(a, stream)) {
          o.errors++;
          if (o.errors <= 3)
            console.error(
              `${t.name} ${stream ? 'stream' : 'non-stream'} (node ${c.delayMs} ms): unexpected answer ${a.status} ${a.body.slice(0, 300)}`,
            );
          continue;
        }
        o.samples.push(stream ? (a.ttftMs as number) : a.totalMs);
        o.totals.push(a.totalMs);
      }
      o.hubCpu += cpuSeconds(c.hubPid) - cpu0;
    }
  }
  return out;
}

interface Throughput {
  turns: number;
  errors: number;
  seconds: number;
  hubCpu: number;
  dbCpu: number;
  providerCpu: number;
  selfCpu: number;
}

/** TP_CONCURRENCY closed-loop clients for `seconds`; turns finished inside the window are counted. */
async function loadBlock(c: Ctx, t: Target, seconds: number, into?: Throughput): Promise<void> {
  const cpu0 = {
    hub: cpuSeconds(c.hubPid),
    db: c.dbCpu?.() ?? NaN,
    provider: cpuSeconds(c.providerPid),
    self: selfCpuSeconds(),
  };
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let turns = 0;
  let errors = 0;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const a = await turn(c, t, false).catch(() => ({ status: 0, totalMs: 0, body: '' }) as Answer);
      if (performance.now() > end) break;
      if (answerOk(a, false)) turns++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: TP_CONCURRENCY }, client));
  if (!into) return;
  into.turns += turns;
  into.errors += errors;
  into.seconds += (performance.now() - t0) / 1000;
  into.hubCpu += cpuSeconds(c.hubPid) - cpu0.hub;
  into.dbCpu += (c.dbCpu?.() ?? NaN) - cpu0.db;
  into.providerCpu += cpuSeconds(c.providerPid) - cpu0.provider;
  into.selfCpu += selfCpuSeconds() - cpu0.self;
}

async function throughput(c: Ctx): Promise<Record<PathName, Throughput>> {
  const empty = (): Throughput => ({
    turns: 0,
    errors: 0,
    seconds: 0,
    hubCpu: 0,
    dbCpu: 0,
    providerCpu: 0,
    selfCpu: 0,
  });
  const out: Record<PathName, Throughput> = { direct: empty(), hub: empty() };
  for (const t of roundOrder(c.paths, 0)) await loadBlock(c, t, TP_WARMUP);
  for (let r = 0; r < TP_ROUNDS; r++)
    for (const t of roundOrder(c.paths, r)) await loadBlock(c, t, TP_SECONDS / TP_ROUNDS, out[t.name]);
  return out;
}

// ---------------------------------------------------------------- report

interface Stats {
  samples: number;
  errors: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

const sortedOf = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

function stats(s: Sequential): Stats {
  const sorted = sortedOf(s.samples);
  const mean = sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1);
  return {
    samples: sorted.length,
    errors: s.errors,
    p50_ms: round(percentile(sorted, 50), 3),
    p99_ms: round(percentile(sorted, 99), 3),
    mean_ms: round(mean, 3),
  };
}

const p50Of = (xs: number[]): number => round(percentile(sortedOf(xs), 50), 3);
const p99Of = (xs: number[]): number => round(percentile(sortedOf(xs), 99), 3);

function tpView(r: Throughput, measureDb: boolean): Record<string, number | null> {
  return {
    turns_per_s: round(r.turns / r.seconds, 1),
    measured_s: round(r.seconds, 2),
    turns: r.turns,
    errors: r.errors,
    hub_cpu_ms_per_turn: round((r.hubCpu * 1000) / (r.turns || 1), 3),
    db_cpu_ms_per_turn: measureDb ? round((r.dbCpu * 1000) / (r.turns || 1), 3) : null,
    hub_cpu_pct: round((r.hubCpu / r.seconds) * 100, 1),
    db_cpu_pct: measureDb ? round((r.dbCpu / r.seconds) * 100, 1) : null,
    provider_cpu_pct: round((r.providerCpu / r.seconds) * 100, 1),
    loadgen_and_node_cpu_pct: round((r.selfCpu / r.seconds) * 100, 1),
  };
}

const verdict = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? 'met' : 'MISS');

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  | ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`).join('\n');
}

const ms = (n: number | undefined | null): string => (n === undefined || n === null ? 'n/a' : `${n} ms`);
const plus = (n: number | undefined): string => (n === undefined ? 'n/a' : `${n >= 0 ? '+' : ''}${n} ms`);

// ---------------------------------------------------------------- main

/** One hub turn, retried for up to 10 s while the hub does not know the node's tool yet; throws with what it answered. */
async function probe(t: Target): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const a = await hubTurn(t, false);
    if (answerOk(a, false)) return;
    if (Date.now() > deadline)
      throw new Error(`the hub's one-tool turn answered ${a.status}, not "${EXPECTED}": ${a.body.slice(0, 1000)}`);
    await sleep(200);
  }
}

/**
 * Where a hub turn's task time goes, from the rows of the `lookup` tasks created between `from`
 * and `to` (PostgreSQL timestamps, same machine): submitted → dispatched (dispatch latency),
 * dispatched → completed (delivery to the node, the node's time, its task_result written);
 * p50 and p99 in ms. The rest of a turn is the two model calls and the hub's own work around them.
 */
async function taskTimes(databaseUrl: string, from: Date, to: Date): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<Record<string, number>>(
      `SELECT count(*)::int AS tasks,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM dispatched_at - created_at)) * 1000 AS created_to_dispatched_p50_ms,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM dispatched_at - created_at)) * 1000 AS created_to_dispatched_p99_ms,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - dispatched_at)) * 1000 AS dispatched_to_completed_p50_ms,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - dispatched_at)) * 1000 AS dispatched_to_completed_p99_ms
         FROM tasks
        WHERE type = 'lookup' AND created_at >= $1 AND created_at <= $2`,
      [from, to],
    );
    return Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, round(Number(v), 3)]));
  } finally {
    await c.end();
  }
}

/**
 * Transactions committed or rolled back in the hub's database so far (pg_stat_database; the
 * backends report theirs at most once a second, so over a window of many seconds this is close,
 * not exact). The bench database is the hub's alone in both modes.
 */
async function transactions(databaseUrl: string): Promise<number> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(
      `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`,
    );
    return Number(rows[0].n);
  } finally {
    await c.end();
  }
}

/** The `lookup` tasks by status, straight from the hub's database. */
async function toolTasks(databaseUrl: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM tasks WHERE type = 'lookup' GROUP BY status`,
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  } finally {
    await c.end();
  }
}

interface VariantReport {
  lines: Record<string, unknown>[];
  rows: string[][];
  met: boolean[];
}

async function runVariant(c: Ctx, common: Record<string, unknown>, measureDb: boolean): Promise<VariantReport> {
  c.node.delayMs = c.delayMs;
  c.localMs.length = 0;
  c.node.ownMs.length = 0;
  const xact0 = await transactions(c.databaseUrl);
  const turns0 = hubTurns.sent;
  const seqFrom = new Date();
  const plain = await sequential(c, false);
  const seqTo = new Date();
  const streamed = STREAM ? await sequential(c, true) : undefined;
  const tp = await throughput(c);
  await sleep(1100); // the backends' last statistics
  // - 1: the reading of xact0 itself. Includes the hub's background work (heartbeats, usage batches).
  const dbTransactionsPerTurn = ((await transactions(c.databaseUrl)) - xact0 - 1) / (hubTurns.sent - turns0 || 1);

  const taskRows = await taskTimes(c.databaseUrl, seqFrom, seqTo);
  const node = {
    node_ms_p50: p50Of(c.node.ownMs),
    node_ms_p99: p99Of(c.node.ownMs),
    baseline_tool_ms_p50: p50Of(c.localMs),
    baseline_tool_ms_p99: p99Of(c.localMs),
  };
  const d1 = stats(plain.direct);
  const h1 = stats(plain.hub);
  const added = (h: Stats, d: Stats, k: 'p50_ms' | 'p99_ms'): number => round(h[k] - d[k], 3);
  const hubCpuSeq = round((plain.hub.hubCpu * 1000) / (h1.samples + h1.errors || 1), 3);
  const d3 = tpView(tp.direct, measureDb);
  const h3 = tpView(tp.hub, measureDb);
  const tpRatio = round((h3.turns_per_s as number) / (d3.turns_per_s as number), 2);
  const met = [added(h1, d1, 'p50_ms') <= TARGET.added_p50_ms];
  const lines: Record<string, unknown>[] = [
    {
      workload: 'W8-tools-nonstream',
      node_delay_ms: c.delayMs,
      warmup_per_path: WARMUP,
      rounds: ROUNDS,
      direct: { ...d1, what: 'two model calls straight to the provider + the tool run by the client' },
      hub: { ...h1, hub_cpu_ms_per_turn: hubCpuSeq },
      ...node,
      task_rows: taskRows,
      db_transactions_per_turn: round(dbTransactionsPerTurn, 2),
      added_p50_ms: added(h1, d1, 'p50_ms'),
      added_p99_ms: added(h1, d1, 'p99_ms'),
      target: `added p50 ≤ ${TARGET.added_p50_ms} ms`,
      target_met: met[0],
      ...common,
    },
  ];
  const rows: string[][] = [
    [
      `node ${c.delayMs} ms: non-stream p50 (${d1.samples}+${h1.samples} seq.)`,
      ms(d1.p50_ms),
      ms(h1.p50_ms),
      plus(added(h1, d1, 'p50_ms')),
      `≤ ${TARGET.added_p50_ms} ms`,
      verdict(met[0]),
    ],
    [`node ${c.delayMs} ms: non-stream p99`, ms(d1.p99_ms), ms(h1.p99_ms), plus(added(h1, d1, 'p99_ms')), '-', '-'],
    [
      `node ${c.delayMs} ms: task rows p50 (seq.)`,
      '-',
      `submitted→dispatched ${ms(taskRows.created_to_dispatched_p50_ms)}, dispatched→completed ${ms(taskRows.dispatched_to_completed_p50_ms)}`,
      '-',
      'report',
      '-',
    ],
  ];
  if (streamed) {
    const d2 = stats(streamed.direct);
    const h2 = stats(streamed.hub);
    met.push(added(h2, d2, 'p50_ms') <= TARGET.added_p50_ms);
    lines.push({
      workload: 'W8-tools-stream',
      node_delay_ms: c.delayMs,
      measure: 'time from the request to the first data: frame of the final answer with non-empty delta.content (TTFT)',
      warmup_per_path: WARMUP,
      rounds: ROUNDS,
      direct: { ...d2, done_p50_ms: p50Of(streamed.direct.totals) },
      hub: { ...h2, done_p50_ms: p50Of(streamed.hub.totals) },
      added_ttft_p50_ms: added(h2, d2, 'p50_ms'),
      added_ttft_p99_ms: added(h2, d2, 'p99_ms'),
      added_done_p50_ms: round(p50Of(streamed.hub.totals) - p50Of(streamed.direct.totals), 3),
      target: `added TTFT p50 ≤ ${TARGET.added_p50_ms} ms`,
      target_met: met[1],
      ...common,
    });
    rows.push(
      [
        `node ${c.delayMs} ms: stream TTFT p50 (${d2.samples}+${h2.samples} seq.)`,
        ms(d2.p50_ms),
        ms(h2.p50_ms),
        plus(added(h2, d2, 'p50_ms')),
        `≤ ${TARGET.added_p50_ms} ms`,
        verdict(met[1]),
      ],
      [`node ${c.delayMs} ms: stream TTFT p99`, ms(d2.p99_ms), ms(h2.p99_ms), plus(added(h2, d2, 'p99_ms')), '-', '-'],
    );
  }
  lines.push({
    workload: 'W8-tools-throughput',
    node_delay_ms: c.delayMs,
    concurrency: TP_CONCURRENCY,
    seconds_per_path: TP_SECONDS,
    blocks_per_path: TP_ROUNDS,
    direct: d3,
    hub: h3,
    ratio: tpRatio,
    note: 'cpu_pct: percent of one core over the measured seconds; on the direct path the hub (and its database) idle; db_cpu: embedded PostgreSQL only',
    ...common,
  });
  rows.push(
    [
      `node ${c.delayMs} ms: ${TP_CONCURRENCY} concurrent`,
      `${d3.turns_per_s} turns/s`,
      `${h3.turns_per_s} turns/s`,
      `×${tpRatio}`,
      'report',
      '-',
    ],
    [
      `node ${c.delayMs} ms: hub CPU per turn`,
      '-',
      `${hubCpuSeq} ms seq., ${h3.hub_cpu_ms_per_turn} ms at ${TP_CONCURRENCY}` +
        (measureDb ? ` (+ database ${h3.db_cpu_ms_per_turn} ms)` : '') +
        `; ${round(dbTransactionsPerTurn, 1)} database transactions`,
      '-',
      'report',
      '-',
    ],
    [`node ${c.delayMs} ms: node's own time p50`, ms(node.baseline_tool_ms_p50), ms(node.node_ms_p50), '-', '-', '-'],
  );
  return { lines, rows, met };
}

async function runMode(mode: HubMode, providerUrl: string, providerPid: number | undefined): Promise<unknown> {
  const providers = [{ name: 'fake', base_url: providerUrl, api_key: 'x', models: [MODEL] }];
  const started = await startModeHub(mode, 'taskhub_bench_w8_tools', {
    env: { LLM_PROVIDERS: JSON.stringify(providers) },
    databaseUrl: mode === 'postgres' ? process.env.BENCH_DATABASE_URL : undefined,
  });
  let teardown: Teardown | undefined;
  const agents: Agent[] = [];
  const target = (name: PathName, url: string): Target => {
    const agent = new Agent({ keepAlive: true, maxSockets: TP_CONCURRENCY });
    agents.push(agent);
    return { name, url: new URL(url), agent };
  };
  let node: ToolNode | undefined;
  hubTurns.sent = 0;
  hubTurns.ok = 0;
  try {
    node = await ToolNode.connect(started.hub.url);
    const paths: Paths = {
      direct: target('direct', `${providerUrl}/chat/completions`),
      hub: target('hub', `${started.hub.url}/v1/chat/completions`),
    };
    await probe(paths.hub);
    const dbCpu = dbCpuMeter(started.dataDir);
    const load = loadavg().map((l) => round(l));
    const common = { mode, database: started.database, loadavg_at_start: load };
    const hubCpu0 = cpuSeconds(started.hub.pid);
    const lines: Record<string, unknown>[] = [];
    const rows: string[][] = [['measure', 'direct (baseline)', 'via hub', 'added', 'target', 'result']];
    const met: boolean[] = [];
    for (const delayMs of NODE_DELAYS) {
      const v = await runVariant(
        {
          paths,
          node,
          delayMs,
          localMs: [],
          hubPid: started.hub.pid,
          providerPid,
          dbCpu,
          databaseUrl: started.databaseUrl,
        },
        common,
        dbCpu !== undefined,
      );
      v.lines.forEach((l) => console.log(JSON.stringify(l)));
      lines.push(...v.lines);
      rows.push(...v.rows);
      met.push(...v.met);
    }
    const hubCpuTotal = round(cpuSeconds(started.hub.pid) - hubCpu0, 2);

    // The database agrees: one completed lookup task per hub turn answered, one assign per task.
    await sleep(200); // a turn answered just after its window: its task row is already final, but be safe
    const tasks = await toolTasks(started.databaseUrl);
    const others = Object.entries(tasks).filter(([s]) => s !== 'completed');
    const check = {
      hub_turns_sent: hubTurns.sent,
      hub_turns_answered: hubTurns.ok,
      tasks_by_status: tasks,
      node_assigns: node.assigns,
      node_duplicate_assigns: node.duplicateAssigns,
      consistent:
        (tasks.completed ?? 0) === hubTurns.ok &&
        others.length === 0 &&
        node.assigns === hubTurns.ok &&
        node.duplicateAssigns === 0,
    };
    console.log(JSON.stringify({ workload: 'W8-tools-check', ...check, hub_cpu_s_whole_run: hubCpuTotal, ...common }));
    console.log(
      [
        `W8-tools: one-tool chat turn, hub vs. the two model calls + the tool without it (${mode}, ${started.database}, hub pid ${started.hub.pid}, provider pid ${providerPid}, load ${load.join(' ')}):`,
        table(rows),
        `  checked: ${hubTurns.ok} hub turns answered, ${tasks.completed ?? 0} lookup tasks completed, ${others.length ? `other statuses ${JSON.stringify(Object.fromEntries(others))}, ` : ''}${node.assigns} task_assign (${node.duplicateAssigns} repeated): ${check.consistent ? 'consistent' : 'MISMATCH'}; hub CPU over the whole run ${hubCpuTotal} s`,
      ].join('\n'),
    );
    node.close();
    teardown = await started.close();
    if (teardown.leftover_postgres_pids?.length || teardown.data_dir_removed === false)
      console.error(`embedded PostgreSQL teardown incomplete: ${JSON.stringify(teardown)}`);
    return {
      mode,
      database: started.database,
      workloads: lines,
      check,
      hub_cpu_s_whole_run: hubCpuTotal,
      targets_met: met.every(Boolean),
      consistent: check.consistent,
    };
  } catch (e) {
    if (started.hub.log) console.error(`hub output (tail):\n${started.hub.log.slice(-4000)}`);
    throw e;
  } finally {
    node?.close();
    agents.forEach((a) => a.destroy());
    if (!teardown) await started.close();
  }
}

async function main(): Promise<void> {
  const root = repoRoot();
  const commit = commitOf(root);
  const outArg = process.argv.find((a) => a.startsWith('--out='))?.slice('--out='.length);
  const outPath = resolve(outArg ?? join(root, 'artifacts', `w8-tools-${commit}.json`));
  const t0 = Date.now();
  const loadStart = loadavg().map((l) => round(l));
  const provider = await startProvider();
  const modes: unknown[] = [];
  let consistent = true;
  try {
    for (const mode of MODES) {
      const r = (await runMode(mode, provider.url, provider.child.pid)) as { consistent: boolean };
      consistent = consistent && r.consistent;
      modes.push(r);
    }
  } finally {
    await stopProcess(provider.child);
  }
  mkdirSync(dirname(outPath), { recursive: true });
  const out = {
    bench: 'W8-tools',
    commit,
    at: new Date().toISOString(),
    settings: {
      samples: SAMPLES,
      rounds: ROUNDS,
      warmup: WARMUP,
      node_delays_ms: NODE_DELAYS,
      stream: STREAM,
      tp_concurrency: TP_CONCURRENCY,
      tp_seconds: TP_SECONDS,
      tp_rounds: TP_ROUNDS,
    },
    target: TARGET,
    modes,
    load_avg_start: loadStart,
    load_avg_end: loadavg().map((l) => round(l)),
    seconds: round((Date.now() - t0) / 1000, 1),
  };
  writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nJSON: ${outPath} (${out.seconds} s)`);
  await sleep(0);
  // A miss of the target is a result, not a failure; an inconsistent database is.
  process.exit(consistent ? 0 : 1);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
