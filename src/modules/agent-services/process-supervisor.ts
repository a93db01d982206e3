import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { extname, isAbsolute, resolve } from 'node:path';
import { Injectable } from '@nestjs/common';
import type { ServiceRow } from './agent-service.types.js';
import { ServiceLogStore } from './service-logs.store.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Exits the hub asked for (stop, restart, shutdown) are not crashes. */
  expected: boolean;
}

interface Managed {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  stopping: boolean;
}

/** Interpreters for an `agent_factory_path` by extension; anything else is executed directly. */
const INTERPRETERS: Record<string, string> = {
  '.py': 'python3',
  '.js': process.execPath,
  '.mjs': process.execPath,
  '.cjs': process.execPath,
  '.sh': 'bash',
};

/** The command line a managed service runs, with `{port}` and `{host}` in args filled in. */
export function commandLine(
  s: Pick<ServiceRow, 'command' | 'args' | 'agent_factory_path' | 'cwd' | 'host'>,
  port: number,
): { file: string; args: string[] } {
  const fill = (a: string): string => a.replaceAll('{port}', String(port)).replaceAll('{host}', s.host);
  if (s.command) return { file: s.command, args: s.args.map(fill) };
  const path = s.agent_factory_path as string;
  const full = isAbsolute(path) ? path : resolve(s.cwd ?? process.cwd(), path);
  const interpreter = INTERPRETERS[extname(full).toLowerCase()];
  return interpreter
    ? { file: interpreter, args: [full, ...s.args.map(fill)] }
    : { file: full, args: s.args.map(fill) };
}

/** Whether host:port can be bound right now. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(true)));
  });
}

/** A port the OS says is free on host (port 0 asks it for one). */
export function freePort(host: string): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/**
 * Kills a process left running by a hub that died (SIGKILL, power loss), but only when its
 * environment proves it is that service's process (a recycled pid is left alone).
 * Linux only (/proc); elsewhere nothing is killed.
 */
export async function killOrphan(pid: number, serviceId: string): Promise<boolean> {
  try {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
    if (!environ.split('\0').includes(`TASKHUB_SERVICE_ID=${serviceId}`)) return false;
    process.kill(pid, 'SIGKILL');
    // Gone, or a zombie waiting for init to reap it: either way its ports are free.
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => 'State: X');
      if (/State:\s+[ZX]/.test(status)) return true;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Child processes of managed services, one per service id at most. Output goes to the log
 * store line by line; stop is SIGTERM, then SIGKILL after a bound.
 */
@Injectable()
export class ProcessSupervisor {
  private readonly processes = new Map<string, Managed>();

  constructor(private readonly logs: ServiceLogStore) {}

  has(serviceId: string): boolean {
    return this.processes.has(serviceId);
  }

  pid(serviceId: string): number | null {
    return this.processes.get(serviceId)?.child.pid ?? null;
  }

  get running(): string[] {
    return [...this.processes.keys()];
  }

  /**
   * Starts the process; `onExit` hears every exit, with `expected` false for crashes.
   * Throws when the executable cannot be spawned at all (ENOENT, EACCES).
   */
  async spawn(service: ServiceRow, port: number, onExit: (info: ExitInfo) => void): Promise<number> {
    if (this.processes.has(service.id)) throw new Error(`service ${service.name} already has a process`);
    const { file, args } = commandLine(service, port);
    const child = spawn(file, args, {
      cwd: service.cwd ?? undefined,
      env: {
        ...process.env,
        ...service.env,
        PORT: String(port),
        HOST: service.host,
        TASKHUB_SERVICE_ID: service.id,
        TASKHUB_SERVICE_NAME: service.name,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', this.logs.lineSplitter(service.id, 'stdout'));
    child.stderr?.on('data', this.logs.lineSplitter(service.id, 'stderr'));
    const managed: Managed = { child, stopping: false, exited: undefined as unknown as Promise<ExitInfo> };
    managed.exited = new Promise<ExitInfo>((done) => {
      child.once('exit', (code, signal) => {
        this.processes.delete(service.id);
        const info = { code, signal, expected: managed.stopping };
        done(info);
        onExit(info);
      });
    });
    this.processes.set(service.id, managed);
    await new Promise<void>((ok, fail) => {
      const failed = (e: Error): void => {
        this.processes.delete(service.id);
        fail(e);
      };
      child.once('error', failed);
      child.once('spawn', () => {
        // Later errors (a failed kill) do not mean the process is gone: 'exit' says that.
        child.off('error', failed);
        child.on('error', () => undefined);
        ok();
      });
    });
    return child.pid as number;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(serviceId: string, graceMs: number): Promise<ExitInfo | null> {
    const m = this.processes.get(serviceId);
    if (!m) return null;
    m.stopping = true;
    m.child.kill('SIGTERM');
    const timer = setTimeout(() => m.child.kill('SIGKILL'), graceMs);
    try {
      return await m.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async stopAll(graceMs: number): Promise<void> {
    await Promise.all(this.running.map((id) => this.stop(id, graceMs)));
  }
}
