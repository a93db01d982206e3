import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './hub-process.js';

// Debian's nginx run with the very configuration docker-compose.yml mounts
// (deploy/nginx/nginx.conf, copied byte for byte), in front of hub processes on loopback. The
// two files that config includes are the deployment's own: compose mounts
// deploy/nginx/compose/*.conf, the proof writes a loopback listen line and one server line per
// hub, with the parameters of compose's server line.

export const COMPOSE_FILE = resolve('docker-compose.yml');
const NGINX_BINARIES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];
/** Where the nginx image reads its configuration (compose mounts files here). */
const CONF_DIR = '/etc/nginx/';

/** The nginx binary here (Debian's is /usr/sbin/nginx), or null. */
export function nginxBinary(): string | null {
  return NGINX_BINARIES.find((p) => existsSync(p)) ?? null;
}

/**
 * What docker-compose.yml mounts into its nginx service: container path → repository path
 * (the `- ./host:container[:ro]` lines of that service's `volumes`).
 */
export function composeNginxMounts(file = COMPOSE_FILE): Map<string, string> {
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^ {2}nginx:\s*$/.test(l));
  if (start < 0) throw new Error(`${file} has no nginx service`);
  const mounts = new Map<string, string>();
  for (const line of lines.slice(start + 1)) {
    if (/^ {0,2}\S/.test(line)) break; // the next service, or the next top-level key
    const m = /^\s+-\s+['"]?\.\/([^:'"]+):([^:'"]+)(?::ro)?['"]?\s*$/.exec(line);
    if (m) mounts.set(m[2], m[1]);
  }
  return mounts;
}

/** The files a config includes (`include name;`), in order. */
export function includesOf(conf: string): string[] {
  return [...conf.matchAll(/^\s*include\s+([^;\s]+);/gm)].map((m) => m[1]);
}

export interface NginxConfig {
  /** deploy/nginx/nginx.conf: what compose mounts as /etc/nginx/nginx.conf. */
  main: string;
  /** Include name → the repository file compose mounts for it. */
  includes: Map<string, string>;
}

/** The nginx configuration of docker-compose.yml; throws when an include of it is not mounted. */
export function composeNginxConfig(): NginxConfig {
  const mounts = composeNginxMounts();
  const main = mounts.get(`${CONF_DIR}nginx.conf`);
  if (!main) throw new Error(`docker-compose.yml mounts nothing at ${CONF_DIR}nginx.conf`);
  const includes = new Map<string, string>();
  for (const name of new Set(includesOf(readFileSync(main, 'utf8')))) {
    const mounted = mounts.get(`${CONF_DIR}${name}`);
    if (!mounted) throw new Error(`${main} includes ${name}, which docker-compose.yml does not mount`);
    includes.set(name, mounted);
  }
  return { main, includes };
}

export interface AccessLine {
  status: number;
  method: string;
  uri: string;
  /** host:port of the hub that answered ('-' when none was asked). */
  upstream: string;
  raw: string;
}

/** One line of the `taskhub` log format (deploy/nginx/nginx.conf). */
function parseAccessLine(raw: string): AccessLine | null {
  const m = /"(\S+) (\S+)" (\d{3}) .* upstream=(\S+)/.exec(raw);
  return m ? { method: m[1], uri: m[2], status: Number(m[3]), upstream: m[4], raw } : null;
}

/** nginx as a child process (master and workers in their own process group). */
export class Nginx {
  readonly dir = mkdtempSync(join(tmpdir(), 'taskhub-nginx-'));
  port = 0;
  url = '';
  stderr = '';
  private child?: ChildProcess;

  constructor(private readonly binary: string) {}

  /** Lines of the error log nginx wrote (startup and run). */
  errorLog(): string {
    const file = join(this.dir, 'error.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /**
   * Writes the config into a scratch prefix (compose's nginx.conf as is; the listen line on a
   * free loopback port; a server line per hub with compose's parameters) and starts nginx,
   * waiting until it answers /healthz from a hub. A port taken before nginx bound it is
   * retried on another.
   */
  async start(hubAddresses: string[]): Promise<this> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOn(await freePort(), hubAddresses);
      } catch (e) {
        if (!/Address already in use/.test(String(e)) || attempt === 3) {
          this.cleanup(); // the error carries nginx's log
          throw e;
        }
      }
    }
  }

  private async startOn(port: number, hubAddresses: string[]): Promise<this> {
    const config = composeNginxConfig();
    copyFileSync(config.main, join(this.dir, 'nginx.conf'));
    for (const [name, mounted] of config.includes) {
      writeFileSync(join(this.dir, name), this.render(name, readFileSync(mounted, 'utf8'), port, hubAddresses));
    }
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    const errorLog = join(this.dir, 'error.log');
    // The config logs access to /dev/stdout (the container's log): here stdout is a file, since
    // nginx cannot open /dev/stdout when it is the socket a pipe to node would be.
    const stdout = openSync(join(this.dir, 'access.log'), 'a');
    this.child = spawn(
      this.binary,
      [
        '-p',
        `${this.dir}/`,
        '-c',
        join(this.dir, 'nginx.conf'),
        '-e',
        errorLog,
        '-g',
        `daemon off; pid ${join(this.dir, 'nginx.pid')}; error_log ${errorLog} info;`,
      ],
      { stdio: ['ignore', stdout, 'pipe'], detached: true },
    );
    closeSync(stdout);
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null)
        throw new Error(`nginx exited with ${this.child.exitCode}:\n${this.stderr}\n${this.errorLog()}`);
      const ok = await fetch(`${this.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop();
    throw new Error(`nginx did not answer /healthz:\n${this.stderr}\n${this.errorLog()}`);
  }

  /** The proof's version of an included file: a loopback listen line, or the hubs on loopback. */
  private render(name: string, composeText: string, port: number, hubs: string[]): string {
    if (/listen/.test(name)) return `listen 127.0.0.1:${port};\n`;
    if (/upstream/.test(name)) {
      const server = /^\s*server\s+\S+((?:\s+[^;\s]+)*);/m.exec(composeText);
      if (!server) throw new Error(`${name}: no server line in compose's version`);
      return hubs.map((h) => `server ${h}${server[1]};\n`).join('');
    }
    throw new Error(`don't know what to write for the include ${name}`);
  }

  /** The access log so far, parsed. */
  access(): AccessLine[] {
    const file = join(this.dir, 'access.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .map(parseAccessLine)
      .filter((l): l is AccessLine => l !== null);
  }

  /** Fast shutdown (SIGTERM to the master); the whole process group is killed if it lingers. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((done) => {
        const timer = setTimeout(() => done(), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          done();
        });
        child.kill('SIGTERM');
      });
    }
    try {
      process.kill(-child.pid, 'SIGKILL'); // workers left behind by a master that did not finish
    } catch {
      // ESRCH: the group is gone, as it should be
    }
  }

  /** Removes the scratch prefix. */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
