import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp } from '../../src/app.factory.js';
import { loadConfig } from '../../src/config/app-config.js';
import { HubExitedError, HubProcess } from '../support/hub-process.js';

// The default a new user gets: no DATABASE_URL, the hub's own PostgreSQL server in DATA_DIR/pg.

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-embedded-'));
  chmodSync(dir, 0o755); // as root the server runs as user postgres, which must reach it
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The postmaster's pid from its lock file, if one is there. */
function postmasterPid(dir: string): number | undefined {
  const file = join(dir, 'pg', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function submit(url: string, key: string, prompt: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/tasks`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, priority: 'high' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { data: { task_id: string } }).data.task_id;
}

async function promptOf(url: string, key: string, id: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { prompt: string } }).data.prompt;
}

/** A start that must fail: the exit code and what the hub printed. */
async function failedStart(
  env: Record<string, string>,
  options: { uid?: number; gid?: number } = {},
): Promise<HubExitedError> {
  try {
    const hub = await new HubProcess({ DATABASE_URL: '', ...env }, options).start();
    await hub.stop();
  } catch (e) {
    if (e instanceof HubExitedError) return e;
    throw e;
  }
  throw new Error('the hub started');
}

describe('embedded PostgreSQL (no DATABASE_URL)', () => {
  async function boot(dir: string): Promise<{ app: NestExpressApplication; url: string }> {
    const app = await createApp(loadConfig({ DATA_DIR: dir, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }));
    await app.listen(0, '127.0.0.1');
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}` };
  }

  it('initialises a fresh DATA_DIR, reports the server in /health, keeps data across a restart, and stops its server on close', async () => {
    const dir = dataDir();
    const first = await boot(dir);
    let taskId: string;
    let key: string;
    try {
      expect(existsSync(join(dir, 'pg', 'PG_VERSION'))).toBe(true);
      expect(readFileSync(join(dir, 'pg-password'), 'utf8').trim()).toMatch(/^[\w-]{32}$/);
      key = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
      expect(key).toMatch(/^th_/);
      const health = (await (await fetch(`${first.url}/health`)).json()) as {
        components: { database: Record<string, unknown> };
      };
      expect(health.components.database).toMatchObject({
        healthy: true,
        embedded: true,
        version: expect.stringMatching(/^18\.\d+/),
      });
      taskId = await submit(first.url, key, 'survive a restart');
    } finally {
      await first.app.close();
    }
    expect(postmasterPid(dir)).toBeUndefined(); // the server stopped with the hub

    const second = await boot(dir);
    try {
      expect(readFileSync(join(dir, 'admin.key'), 'utf8').trim()).toBe(key); // no second admin key
      expect(await promptOf(second.url, key, taskId)).toBe('survive a restart');
    } finally {
      await second.app.close();
    }
  }, 120_000);

  const skip = HubProcess.skipReason();
  if (skip) process.stdout.write(`\n[embedded] process tests skipped: ${skip}\n`);
  const processIt = skip ? it.skip : it;

  processIt(
    'after a SIGKILL of the hub (its server left running) the next start stops the orphan and comes back with the data',
    async () => {
      const dir = dataDir();
      const env = { DATABASE_URL: '', DATA_DIR: dir };
      const hub = await new HubProcess(env).start();
      const key = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
      const taskId = await submit(hub.url, key, 'survive a SIGKILL');
      await hub.kill();
      const orphan = postmasterPid(dir) as number;
      expect(alive(orphan)).toBe(true); // nobody stopped it

      const again = await new HubProcess(env).start();
      try {
        expect(alive(orphan)).toBe(false);
        const current = postmasterPid(dir) as number;
        expect(current).not.toBe(orphan);
        expect(alive(current)).toBe(true);
        expect(again.output).toContain('left running by a hub that did not stop cleanly');
        expect(await promptOf(again.url, key, taskId)).toBe('survive a SIGKILL');
      } finally {
        expect(await again.stop()).toBe(0);
      }
      await waitUntil(() => postmasterPid(dir) === undefined);
    },
    120_000,
  );

  processIt(
    'a signal that arrives twice at once (Ctrl-C under npm start: the terminal and npm) shuts down once, stopping its server',
    async () => {
      const dir = dataDir();
      const hub = await new HubProcess({ DATABASE_URL: '', DATA_DIR: dir }).start();
      const server = postmasterPid(dir) as number;
      hub.signal('SIGINT');
      await new Promise((r) => setTimeout(r, 100)); // npm's copy comes a moment later (at once, the kernel merges them)
      hub.signal('SIGINT');
      expect(await hub.exited()).toBe(0);
      await waitUntil(() => !alive(server));
      expect(postmasterPid(dir)).toBeUndefined();
    },
    120_000,
  );

  processIt(
    'refuses a second hub on a DATA_DIR a running hub owns',
    async () => {
      const dir = dataDir();
      const owner = await new HubProcess({ DATABASE_URL: '', DATA_DIR: dir }).start();
      try {
        const pid = postmasterPid(dir);
        const refused = await failedStart({ DATA_DIR: dir });
        expect(refused.code).toBe(1);
        expect(refused.output).toContain(`DATA_DIR ${dir} is in use by another taskhub process (pid ${owner.pid}`);
        expect(postmasterPid(dir)).toBe(pid); // the owner's server was left alone
        expect((await fetch(`${owner.url}/health`)).status).toBe(200);
      } finally {
        await owner.stop();
      }
    },
    120_000,
  );

  processIt(
    'a data directory of another major version stops the start, naming both versions',
    async () => {
      const dir = dataDir();
      mkdirSync(join(dir, 'pg'));
      writeFileSync(join(dir, 'pg', 'PG_VERSION'), '15\n');
      writeFileSync(join(dir, 'pg-password'), 'x\n');
      const refused = await failedStart({ DATA_DIR: dir });
      expect(refused.code).toBe(1);
      expect(refused.output).toMatch(
        /holds a PostgreSQL 15 data directory, and the embedded server is PostgreSQL 18\.\d+: upgrade it with pg_upgrade/,
      );
    },
    60_000,
  );

  processIt(
    'an EMBEDDED_PG_PORT in use stops the start, naming the port',
    async () => {
      const holder: Server = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
      const port = (holder.address() as { port: number }).port;
      try {
        const refused = await failedStart({ DATA_DIR: dataDir(), EMBEDDED_PG_PORT: String(port) });
        expect(refused.code).toBe(1);
        expect(refused.output).toContain(`EMBEDDED_PG_PORT ${port} is already in use on 127.0.0.1`);
      } finally {
        holder.close();
      }
    },
    60_000,
  );

  // As root nothing is read-only to the hub, so it runs as `nobody` there; as anyone else, as itself.
  const root = userInfo().uid === 0;
  const nobody = root ? Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })) : undefined;
  const nogroup = root ? Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) : undefined;

  processIt(
    'a read-only DATA_DIR stops the start, naming the directory',
    async () => {
      const dir = dataDir();
      chmodSync(dir, 0o555);
      const refused = await failedStart({ DATA_DIR: dir }, { uid: nobody, gid: nogroup });
      expect(refused.code).toBe(1);
      expect(refused.output).toContain(`DATA_DIR ${dir} is not writable (EACCES)`);
      expect(existsSync(join(dir, 'pg'))).toBe(false);
    },
    60_000,
  );

  (skip || !root ? it.skip : it)(
    'starts as a normal user too (the server then runs as that user)',
    async () => {
      const dir = dataDir();
      chownSync(dir, nobody as number, nogroup as number);
      const hub = await new HubProcess({ DATABASE_URL: '', DATA_DIR: dir }, { uid: nobody, gid: nogroup }).start();
      try {
        const pid = postmasterPid(dir) as number;
        const owner = execFileSync('ps', ['-o', 'uid=', '-p', String(pid)], { encoding: 'utf8' }).trim();
        expect(Number(owner)).toBe(nobody);
        expect((await fetch(`${hub.url}/health`)).status).toBe(200);
      } finally {
        expect(await hub.stop()).toBe(0);
      }
    },
    120_000,
  );
});
