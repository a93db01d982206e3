import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * A fresh database (dropped first), for one benchmark, on the server of `adminUrl`
 * (default: the local PostgreSQL). Only names containing "bench" are accepted, so a
 * mistyped name can never drop a real database.
 */
export async function freshDatabase(name: string, adminUrl = PG_ADMIN_URL): Promise<string> {
  if (!/^[a-z0-9_]*bench[a-z0-9_]*$/.test(name)) throw new Error(`refusing to drop and re-create database "${name}": a bench database name contains "bench" ([a-z0-9_])`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
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

/** The built hub (dist/src/main.js) as a separate process. */
export class Hub {
  private child?: ChildProcess;
  url = '';
  log = '';

  /** `options.port`: listen there instead of a free port (e.g. a restart on the same URL). */
  constructor(
    private readonly env: Record<string, string>,
    private readonly options: { port?: number } = {},
  ) {}

  async start(): Promise<this> {
    const port = this.options.port ?? (await freePort());
    this.url = `http://127.0.0.1:${port}`;
    // BENCH_HUB_NODE_ARGS, e.g. --cpu-prof, profiles the hub under a workload.
    const nodeArgs = (process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
    this.child = spawn(process.execPath, [...nodeArgs, resolve('dist/src/main.js')], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', AUTH_REQUIRED: 'false', RATE_LIMIT_MAX: '0', ...this.env },
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
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`hub exited:\n${this.log}`);
      if (await fetch(`${this.url}/healthz`).then((r) => r.ok, () => false)) return this;
      await sleep(100);
    }
    child.kill('SIGKILL');
    throw new Error(`hub not healthy after 60 s:\n${this.log}`);
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
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
