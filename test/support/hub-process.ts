import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

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

/** A real hub process (the built app), for multi-process tests. */
export class HubProcess {
  private child?: ChildProcess;
  output = '';
  url = '';

  constructor(private readonly env: Record<string, string>) {}

  static canRun(): boolean {
    return existsSync(BUILT_MAIN);
  }

  async start(): Promise<this> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(process.execPath, [BUILT_MAIN], {
      env: { ...process.env, NODE_OPTIONS: '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`hub exited with ${this.child.exitCode}:\n${this.output}`);
      const ok = await fetch(`${this.url}/healthz`).then((r) => r.ok, () => false);
      if (ok) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`hub did not become healthy:\n${this.output}`);
  }

  /** Waits for the process to end by itself; its exit code. */
  exited(timeoutMs = 20_000): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolveExit, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub did not exit:\n${this.output}`)), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolveExit(code);
      });
    });
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
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
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
