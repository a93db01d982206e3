import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * BENCH_DB_SUFFIX (default empty) is appended to every bench database name, and to the BullMQ
 * key prefix, so two people can run benchmarks on the same servers at once.
 */
export const DB_SUFFIX = process.env.BENCH_DB_SUFFIX ?? '';
if (!/^[a-z0-9_]*$/.test(DB_SUFFIX))
  throw new Error(`BENCH_DB_SUFFIX "${DB_SUFFIX}" must be [a-z0-9_]* (it becomes part of database names)`);

/**
 * A fresh database (dropped first), for one benchmark, on the server of `adminUrl`
 * (default: the local PostgreSQL), named `name` + BENCH_DB_SUFFIX. `options.exact` skips the
 * suffix: for a database the caller named in full (BENCH_DATABASE_URL). Only names containing
 * "bench" are accepted, so a mistyped name can never drop a real database.
 */
export async function freshDatabase(
  name: string,
  adminUrl = PG_ADMIN_URL,
  options: { exact?: boolean } = {},
): Promise<string> {
  const full = options.exact ? name : `${name}${DB_SUFFIX}`;
  if (!/^[a-z0-9_]*bench[a-z0-9_]*$/.test(full))
    throw new Error(
      `refusing to drop and re-create database "${full}": a bench database name contains "bench" ([a-z0-9_])`,
    );
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${full} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${full}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${full}`;
  return url.toString();
}

/** BENCH_DATABASE_URL's database re-created (its exact name, no suffix); its URL is returned as given. */
export async function freshDatabaseAt(url: string): Promise<string> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  await freshDatabase(name, admin.toString(), { exact: true });
  return url; // the caller's exact URL, query options and all
}

// ------------------------------------------------------------ the hub's embedded PostgreSQL

/**
 * An empty DATA_DIR for an embedded hub, removed when this process exits (also on Ctrl-C).
 * Mode 0755: as root the embedded server runs as user postgres, which must enter it.
 */
export function tempDataDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  process.once('exit', () => removeDataDir(dir));
  return dir;
}

/** Stops whatever embedded server is still running on `dir` (a hub that was killed), then deletes it. */
export function removeDataDir(dir: string): void {
  const pid = embeddedPostmasterPid(dir);
  if (pid !== undefined && isAlive(pid)) {
    try {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown: nothing left to save in a deleted directory
    } catch {
      /* gone meanwhile */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Lines of DATA_DIR/pg/postmaster.pid: 1 the postmaster pid, 4 the port. */
function postmasterPidFile(dataDir: string): string[] | undefined {
  try {
    return readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

/** The postmaster of the embedded server on DATA_DIR, when its pid file is there. */
export function embeddedPostmasterPid(dataDir: string): number | undefined {
  const pid = Number(postmasterPidFile(dataDir)?.[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * URL of the embedded database of a running hub on `dataDir` (src/database/embedded-postgres.ts):
 * user postgres, the password in DATA_DIR/pg-password, the port on line 4 of postmaster.pid,
 * database taskhub on 127.0.0.1. Contains the password: never print it.
 */
export function embeddedDatabaseUrl(dataDir: string): string {
  const lines = postmasterPidFile(dataDir);
  const port = Number(lines?.[3]);
  if (!lines || !Number.isInteger(port) || port <= 0)
    throw new Error(`no running embedded PostgreSQL in ${dataDir} (postmaster.pid missing or without a port)`);
  const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/taskhub`;
}

/** Direct children of `pid` (`ps --ppid`): the postmaster's backends and auxiliary processes. */
export function childPids(pid: number): number[] {
  try {
    const out = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ------------------------------------------------------------ hub modes

/** `embedded`: the default `npm start` (no DATABASE_URL); `postgres`: a fresh database on the local PostgreSQL. */
export type HubMode = 'embedded' | 'postgres';

/** --mode=embedded|postgres|both, else BENCH_MODE, default both (embedded first). */
export function selectedModes(argv = process.argv): HubMode[] {
  const arg = argv.find((a) => a.startsWith('--mode='))?.slice('--mode='.length) ?? process.env.BENCH_MODE ?? 'both';
  if (arg === 'both') return ['embedded', 'postgres'];
  if (arg === 'embedded' || arg === 'postgres') return [arg];
  throw new Error(`--mode / BENCH_MODE: expected embedded, postgres or both, got "${arg}"`);
}

/** A started hub in one mode, with a direct URL to the database it uses. */
export interface ModeHub {
  mode: HubMode;
  hub: Hub;
  /** The hub's database, for counting rows directly (embedded: its own server). Never print it. */
  databaseUrl: string;
  /** e.g. "embedded PostgreSQL 18.4", "PostgreSQL 15.20". */
  database: string;
  /** Embedded mode: the hub's temp DATA_DIR. */
  dataDir?: string;
  /** Stops the hub; embedded: checks its server is gone and removes DATA_DIR. */
  close(): Promise<Teardown>;
}

/** What closing a hub left behind (embedded mode), reported on the summary line. */
export interface Teardown {
  data_dir_removed?: boolean;
  leftover_postgres_pids?: number[];
}

/** The server's version, e.g. "18.4". */
export async function serverVersion(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return rows[0].v.split(' ')[0];
  } finally {
    await c.end();
  }
}

/**
 * Starts a hub in `mode`. Postgres mode uses database `dbName` (+ BENCH_DB_SUFFIX) on the local
 * PostgreSQL, or `options.databaseUrl` when given (re-created, exact name).
 */
export async function startModeHub(
  mode: HubMode,
  dbName: string,
  options: { env?: Record<string, string>; databaseUrl?: string; root?: string } = {},
): Promise<ModeHub> {
  const hubOptions = { root: options.root };
  if (mode === 'postgres') {
    const databaseUrl = options.databaseUrl ? await freshDatabaseAt(options.databaseUrl) : await freshDatabase(dbName);
    const hub = await new Hub({ DATABASE_URL: databaseUrl, ...options.env }, hubOptions).start();
    const close = async (): Promise<Teardown> => {
      await hub.stop();
      return {};
    };
    return { mode, hub, databaseUrl, database: `PostgreSQL ${await serverVersion(databaseUrl)}`, close };
  }
  const dataDir = tempDataDir(`${dbName}-`);
  const hub = new Hub({ DATABASE_URL: '', DATA_DIR: dataDir, ...options.env }, hubOptions);
  try {
    await hub.start();
  } catch (e) {
    await stopEmbeddedHub(hub, dataDir);
    throw e;
  }
  const databaseUrl = embeddedDatabaseUrl(dataDir);
  const database = `embedded PostgreSQL ${await serverVersion(databaseUrl)}`;
  return { mode, hub, databaseUrl, database, dataDir, close: () => stopEmbeddedHub(hub, dataDir) };
}

/**
 * Stops an embedded hub (which stops its server), then checks that the postmaster and every
 * process it had are gone (a hub that needed SIGKILL leaves its server running: stopped here)
 * and removes DATA_DIR.
 */
export async function stopEmbeddedHub(hub: Hub, dataDir: string): Promise<Teardown> {
  const postmaster = embeddedPostmasterPid(dataDir);
  const pids = postmaster === undefined ? [] : [postmaster, ...childPids(postmaster)];
  await hub.stop();
  const deadline = Date.now() + 10_000;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  const leftover = pids.filter(isAlive);
  removeDataDir(dataDir); // SIGQUITs a postmaster that is still there
  return { data_dir_removed: !existsSync(dataDir), leftover_postgres_pids: leftover };
}

// ------------------------------------------------------------ anchors

/** An anchor's numbers, or why it could not be measured; printed as is. */
export type Skipped = `skipped: ${string}`;
export type Measured<T> = T | Skipped;

export const isSkipped = <T>(m: Measured<T>): m is Skipped => typeof m === 'string';

/** Runs an anchor; a failure (e.g. Redis not running) becomes "skipped: <reason>" instead of ending the benchmark. */
export async function measureOrSkip<T>(name: string, fn: () => Promise<T>): Promise<Measured<T>> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    const reason = (err.message || err.code || String(e)).split('\n')[0];
    console.error(`${name}: skipped: ${reason}`);
    return `skipped: ${reason}`;
  }
}

/** hub / anchor, rounded; the anchor's skip reason when there is no anchor figure. */
export function ratioTo<T>(hub: number, anchor: Measured<T>, figure: (a: T) => number): number | Skipped {
  return isSkipped(anchor) ? anchor : round(hub / figure(anchor));
}

/** Hub processes still running; killed if the benchmark exits or is interrupted. */
const liveChildren = new Set<ChildProcess>();
let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => liveChildren.forEach((c) => c.kill('SIGKILL')));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      liveChildren.forEach((c) => c.kill('SIGKILL'));
      process.exit(130);
    });
  }
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

/**
 * The built hub (dist/src/main.js) as a separate process. `options.root`: the repository whose
 * build to run, in that directory (default: this one, from the current directory), e.g. another
 * worktree for a before/after comparison.
 */
export class Hub {
  private child?: ChildProcess;
  url = '';
  log = '';

  /**
   * `options.port`: listen there instead of a free port (e.g. a restart on the same URL);
   * `options.startTimeoutMs`: how long start() waits for /healthz (default 60 s; a hub whose
   * migrations rewrite a large table may need longer).
   */
  constructor(
    private readonly env: Record<string, string>,
    private readonly options: { port?: number; root?: string; startTimeoutMs?: number } = {},
  ) {}

  async start(): Promise<this> {
    const port = this.options.port ?? (await freePort());
    this.url = `http://127.0.0.1:${port}`;
    // BENCH_HUB_NODE_ARGS, e.g. --cpu-prof, profiles the hub under a workload.
    const nodeArgs = (process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
    // BENCH_HUB_ROOT: another checkout's build (a before/after of the hub with the same bench).
    const root = resolve(this.options.root ?? process.env.BENCH_HUB_ROOT ?? '.');
    this.child = spawn(process.execPath, [...nodeArgs, join(root, 'dist/src/main.js')], {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        AUTH_REQUIRED: 'false',
        RATE_LIMIT_MAX: '0',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = this.child;
    installCleanup();
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    // Keep the last 256 KB of the hub's output for error reports.
    const keep = (d: Buffer): void => {
      this.log += d.toString();
      if (this.log.length > 256_000) this.log = this.log.slice(-256_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`hub exited:\n${this.log}`);
      if (
        await fetch(`${this.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return this;
      await sleep(100);
    }
    child.kill('SIGKILL');
    throw new Error(`hub not healthy after ${timeoutMs / 1000} s:\n${this.log}`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    const child = this.child;
    // signalCode: a hub killed by a signal has no exit code, and its 'exit' has already fired.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        done();
      });
      child.kill('SIGTERM');
    });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round = (n: number, places = 2): number => Math.round(n * 10 ** places) / 10 ** places;

/** POST JSON and parse the answer. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** An API call with a key; the envelope's `data`. */
export async function api<T>(hub: Hub, key: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 1000)}`);
  return (JSON.parse(text) as { data: T }).data;
}

/**
 * The admin key a hub with AUTH_REQUIRED made on its first start: DATA_DIR/admin.key (embedded)
 * or its log line (Hub keeps the hub's output; the line is a warning, so LOG_LEVEL=warn shows it).
 */
export async function bootstrapAdminKey(hub: Hub, dataDir: string | undefined): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (dataDir && existsSync(join(dataDir, 'admin.key')))
      return readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    const m = /Created the first admin API key[^:]*: (th_[A-Za-z0-9_-]+)/.exec(hub.log);
    if (m) return m[1];
    await sleep(100);
  }
  throw new Error(`no bootstrap admin key in the hub's output:\n${hub.log.slice(-4000)}`);
}
