// A real hub process for the edge's fault tests (test/e2e/edge-faults.e2e-spec.ts), with what
// every case checks afterwards: the process still runs, /healthz answers within a second, a
// normal client completes a task end to end on another connection, the hub's RSS grew less
// than the case's bound, and nothing was logged at error level that the case did not expect.
// A hub that died in one case is started again (same database, same keys) before the next.
// `group()` makes a describe block around one such hub; `upgrade`, `fate` and `counted` are
// what its cases share.
import { readdirSync, readFileSync } from 'node:fs';
import { HubProcess } from './hub-process.js';
import { RawClient, upgradeRequest } from './net-faults.js';
import { createSuiteDatabase } from './test-database.js';

/** Where a case began: the hub's output so far and its RSS. */
export interface CaseMark {
  offset: number;
  rssMb: number;
  pid: number;
  at: number;
}

export interface VerifyOptions {
  /** The hub's RSS may grow at most this much during the case. */
  rssGrowthMb: number;
  /** Error-level log lines (pino level ≥ 50) the case expects, by message. */
  allowErrors?: RegExp;
}

/** A pino line of level error (50) or fatal (60). */
interface LogLine {
  level: number;
  msg?: string;
  context?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process, in MB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** File descriptors a process holds (its sockets among them). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Lines of pino JSON output at error level or worse. */
export function errorLines(output: string): LogLine[] {
  const found: LogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as LogLine;
      if (typeof l.level === 'number' && l.level >= 50) found.push(l);
    } catch {
      // not a log line
    }
  }
  return found;
}

let keys = 0;

async function createKey(url: string, adminKey: string, role: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `edge-${role}-${++keys}`, roles: [role] }),
  });
  if (res.status !== 201) throw new Error(`creating a ${role} key: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { key: string } }).data.key;
}

export class EdgeHub {
  private probes = 0;
  /** How often the process died and was started again. */
  restarts = 0;

  private constructor(
    readonly process: HubProcess,
    readonly adminKey: string,
    readonly clientKey: string,
    readonly workerKey: string,
  ) {}

  /** A hub on its own migrated database, with `env` over the defaults; its admin, client and worker keys. */
  static async start(label: string, env: Record<string, string>): Promise<EdgeHub> {
    const hub = new HubProcess({
      DATABASE_URL: await createSuiteDatabase(label),
      AUTH_REQUIRED: 'true',
      RATE_LIMIT_MAX: '0',
      LOG_LEVEL: 'warn',
      ...env,
    });
    await hub.start();
    const found = /first admin API key[^:]*: ([A-Za-z0-9_-]+)/.exec(hub.output);
    if (!found) throw new Error(`no admin key printed:\n${hub.output.slice(-2000)}`);
    const keyOf = (role: string): Promise<string> => createKey(hub.url, found[1], role);
    return new EdgeHub(hub, found[1], await keyOf('client'), await keyOf('worker'));
  }

  /** A new API key with `role` (global admins make keys of the default tenant). */
  createKey(role: string): Promise<string> {
    return createKey(this.url, this.adminKey, role);
  }

  get url(): string {
    return this.process.url;
  }

  get wsUrl(): string {
    return this.url.replace('http', 'ws');
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** Starts the hub again if an earlier case killed it (same database and keys, a new port). */
  async ensureUp(): Promise<void> {
    if (this.process.running) return;
    this.restarts++;
    await this.process.start();
  }

  /** Call when a case begins. */
  mark(): CaseMark {
    return { offset: this.process.output.length, rssMb: rssMb(this.pid), pid: this.pid, at: Date.now() };
  }

  /** The hub's output since `mark`. */
  outputSince(mark: CaseMark): string {
    return this.process.output.slice(mark.offset);
  }

  private assertRunning(mark: CaseMark, when: string): void {
    if (this.process.running) return;
    const out = this.outputSince(mark);
    throw new Error(`the hub process died ${when}; its output since the case began:\n${out.slice(-3000)}`);
  }

  /** Fails unless the hub came through the case unharmed (see the file's comment). */
  async verify(mark: CaseMark, options: VerifyOptions): Promise<void> {
    // A reset kills an unguarded process on its next turn of the event loop: give it that turn.
    await sleep(250);
    this.assertRunning(mark, 'during the case');
    const started = Date.now();
    const health = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status,
      (e: Error) => `no answer within 1 s (${e.message})`,
    );
    if (health !== 200) throw new Error(`GET /healthz: ${health} after ${Date.now() - started} ms`);
    await this.completeTask();
    this.assertRunning(mark, 'after the case');
    const grew = rssMb(this.pid) - mark.rssMb;
    if (grew >= options.rssGrowthMb)
      throw new Error(`the hub's RSS grew ${grew.toFixed(1)} MB during the case (bound ${options.rssGrowthMb} MB)`);
    const unexpected = errorLines(this.outputSince(mark)).filter(
      (l) => !options.allowErrors?.test(`${l.context ?? ''} ${l.msg ?? ''}`),
    );
    if (unexpected.length)
      throw new Error(`the hub logged at error level:\n${unexpected.map((l) => JSON.stringify(l)).join('\n')}`);
  }

  private async call<T>(method: string, path: string, body?: unknown, key = this.adminKey): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return (JSON.parse(text) as { data: T }).data;
  }

  /** A normal client submits a task, a pull worker takes it and completes it. */
  async completeTask(): Promise<void> {
    const dir = `/edge-probe/${++this.probes}`;
    const created = await this.call<{ task_id: string }>('POST', '/api/v1/tasks', {
      prompt: 'edge probe',
      work_directory: dir,
    });
    const next = await this.call<{ task_id: string; attempt: number } | null>(
      'GET',
      `/api/v1/tasks/next?worker_id=edge-probe&work_path=${encodeURIComponent(dir)}`,
    );
    if (next?.task_id !== created.task_id)
      throw new Error(`the pull worker got ${JSON.stringify(next)} instead of task ${created.task_id}`);
    const done = await this.call<{ state: string }>('POST', `/api/v1/tasks/${created.task_id}/complete`, {
      worker_id: 'edge-probe',
      attempt: next.attempt,
      result: { status: 'success', output: 'ok' },
    });
    if (done.state !== 'completed') throw new Error(`the probe task ended ${done.state}`);
  }

  /** The sum of a Prometheus counter's samples whose labels include `labels`. */
  async counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    const res = await fetch(`${this.url}/metrics?format=prometheus`, {
      headers: { authorization: `Bearer ${this.adminKey}`, accept: 'text/plain' },
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ([0-9.eE+-]+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
    }
    return sum;
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}

// --- a describe block per hub, and what its cases share ---------------------------------------

export interface Group {
  hub: EdgeHub;
  mark: CaseMark;
  /** Closed after the case (a hub that dies then fails the case too). */
  track<T extends RawClient | RawClient[]>(c: T): T;
  /** A case: when it fails because the hub died, the failure says so and shows the hub's last output. */
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

/**
 * A describe block with one hub process (`env` over EdgeHub's defaults; a function may start
 * what the env names first). Each case gets a running hub (started again if an earlier case
 * killed it), its `mark`, and its tracked connections closed after it. Skipped without a built dist.
 */
export function group(
  label: string,
  env: Record<string, string> | (() => Promise<Record<string, string>>),
  cases: (g: Group) => void,
): void {
  (HubProcess.skipReason() ? describe.skip : describe)(label, () => {
    let tracked: RawClient[] = [];
    const g = {
      track: <T extends RawClient | RawClient[]>(c: T): T => {
        tracked.push(...(Array.isArray(c) ? c : [c]));
        return c;
      },
      it: (name: string, fn: () => Promise<void>, timeoutMs?: number) =>
        it(
          name,
          async () => {
            try {
              await fn();
            } catch (e) {
              await sleep(250); // a process that crashed takes a moment to be reaped
              if (g.hub.process.running || (e as Error).message.startsWith('the hub process died')) throw e;
              throw new Error(
                `the hub process died during the case (the case saw: ${(e as Error).message.split('\n')[0]}); its output since the case began:\n${g.hub.outputSince(g.mark).slice(-3000)}`,
                { cause: e },
              );
            }
          },
          timeoutMs,
        ),
    } as Group;
    beforeAll(async () => {
      g.hub = await EdgeHub.start(`edge_${label.split(':')[0]}`, typeof env === 'function' ? await env() : env);
    }, 90_000);
    afterAll(async () => {
      await g.hub?.stop();
    }, 30_000);
    beforeEach(async () => {
      await g.hub.ensureUp();
      g.mark = g.hub.mark();
    }, 60_000);
    afterEach(async () => {
      await sleep(100);
      const wasRunning = g.hub.process.running; // a death during the case is that case's failure already
      tracked.forEach((c) => c.close());
      tracked = [];
      await sleep(200);
      if (wasRunning && !g.hub.process.running)
        throw new Error(
          `the hub died when the case's connections were closed:\n${g.hub.outputSince(g.mark).slice(-3000)}`,
        );
    });
    cases(g);
  });
}

/** Opens a raw connection, sends a complete upgrade request and waits for the answer's head. */
export async function upgrade(
  g: Group,
  path: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<{ c: RawClient; status: number; body: string }> {
  const c = g.track(await RawClient.open(g.hub.url, localAddress));
  c.write(upgradeRequest(path, headers));
  const head = await c.readHead(5000);
  if (head.status !== 101) await c.ended(2000); // a refusal's body, then the hub closes
  return { c, status: head.status, body: head.status === 101 ? '' : c.body().toString() };
}

/** What became of a connection within `ms`: the close frame the hub sent, or how it ended. */
export async function fate(c: RawClient, ms: number): Promise<string> {
  await c.waitFor('a close', ms, (x) => (!x.open || x.closed() ? true : undefined)).catch(() => undefined);
  const close = c.closed();
  if (close) return `close ${close.code}${close.reason ? ` ${close.reason}` : ''}`;
  return c.open
    ? `still open (${(c.received / 1e6).toFixed(1)} MB received)`
    : `ended (${c.ending}) without a close frame`;
}

/** Polls `read` until `ok` holds or `ms` pass; the last value read. */
export async function waitUntil<T>(read: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let v = read();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(100);
    v = read();
  }
  return v;
}

/** Waits until every connection is closed or `ms` pass; how many are still open. */
export function stillOpenAfter(conns: RawClient[], ms: number): Promise<number> {
  return waitUntil(
    () => conns.filter((c) => c.open).length,
    (open) => open === 0,
    ms,
  );
}

/** The growth of a counter's samples (labels matched) across `during`. */
export async function counted(
  g: Group,
  name: string,
  labels: Record<string, string>,
  during: () => Promise<void>,
): Promise<number> {
  const before = await g.hub.counter(name, labels);
  await during();
  return (await g.hub.counter(name, labels)) - before;
}
