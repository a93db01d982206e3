import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createEmptyDatabase } from './test-database.js';

export const BUILT_MAIN = resolve('dist/src/main.js');

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

/** Whether nothing listens on the port (a listen on it succeeds). */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once('error', () => ok(false));
    srv.listen(port, host, () => srv.close(() => ok(true)));
  });
}

export interface HubProcessOptions {
  /** Listen on this port (e.g. to restart a hub on the same URL); default a free one. */
  port?: number;
  /** Run as this user (the test runner is root): e.g. to prove a start as a normal user. */
  uid?: number;
  gid?: number;
}

/** The hub ended during its start: its exit code and everything it printed. */
export class HubExitedError extends Error {
  constructor(
    readonly code: number,
    readonly output: string,
  ) {
    super(`hub exited with ${code}:\n${output}`);
  }
}

/** A real hub process (the built app), for multi-process tests. */
export class HubProcess {
  private child?: ChildProcess;
  output = '';
  url = '';
  port = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly options: HubProcessOptions = {},
  ) {}

  static canRun(): boolean {
    return existsSync(BUILT_MAIN);
  }

  /** Why a suite that runs the built app cannot run here; null when it can. */
  static skipReason(): string | null {
    if (!HubProcess.canRun()) return 'dist/src/main.js is missing (run npm run build)';
    return null;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts the hub (on `port`, else the constructor's, else a free one) and waits until /healthz
   * answers. A free port can be taken (by another suite's client socket) between freePort() and
   * the hub's listen: that start is repeated on another port, its output kept.
   */
  async start(port?: number): Promise<this> {
    const fixed = port ?? this.options.port;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOn(fixed ?? (await freePort()));
      } catch (e) {
        const portTaken = e instanceof HubExitedError && e.output.includes('EADDRINUSE');
        if (!portTaken || fixed !== undefined || attempt === 3) throw e;
      }
    }
  }

  private async startOn(port: number): Promise<this> {
    this.port = port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.child = spawn(process.execPath, [BUILT_MAIN], {
      // No Redis unless the test asks for it: suites run in parallel, and hubs sharing a Redis
      // adapter would broadcast into each other's rooms.
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        REDIS_URL: '',
        PORT: String(this.port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      uid: this.options.uid,
      gid: this.options.gid,
    });
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new HubExitedError(this.child.exitCode, this.output);
      const ok = await fetch(`${this.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`hub did not become healthy:\n${this.output}`);
  }

  /** Waits for the process to end by itself; its exit code. */
  exited(timeoutMs = 20_000): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolveExit, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`hub did not exit within ${timeoutMs} ms:\n${this.output.slice(-4000)}`)),
        timeoutMs,
      );
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolveExit(code);
      });
    });
  }

  /** Sends a signal without waiting (pair with `exited`). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child?.kill(sig);
  }

  /** SIGKILL (a crash): no shutdown hooks run. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolveExit) => {
      child.once('exit', () => resolveExit());
      child.kill('SIGKILL');
    });
  }

  /** SIGTERM and wait for the exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    return new Promise((resolveExit) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolveExit(code);
      });
      child.kill('SIGTERM');
    });
  }
}

/** A fresh, empty database on the run's server for one scenario; its URL. The hub migrates it on start. */
export function freshDatabase(scenario: string): Promise<string> {
  return createEmptyDatabase(scenario);
}
