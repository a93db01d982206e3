import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliEnv } from '../../src/cli/program.js';
import { bearer, startTestApp, type TestApp, truncate } from '../support/test-app.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

interface TaskJson {
  task_id: string;
  status: string;
  state: string;
  priority: string;
  tags: string[];
  type: string;
  prompt: string | null;
  data: unknown;
  work_directory: string | null;
  timeout_seconds: number;
  max_retries: number;
  retry_count: number;
  reason: string | null;
}

interface ListJson {
  tasks: TaskJson[];
  pagination: {
    total: number;
    limit: number;
    offset: number;
    has_more: boolean;
    next_cursor: string | null;
    total_capped: boolean;
  };
}

interface LogsJson {
  task_id: string;
  logs: {
    id: number;
    timestamp: string;
    type: string;
    level: string;
    message: string | null;
    attempt: number | null;
  }[];
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe('taskhub CLI (in-process, against a running hub)', () => {
  let t: TestApp;
  let noKeyDir: string;

  beforeAll(async () => {
    t = await startTestApp();
    // No admin.key here, so "no --key, no TASKHUB_KEY" really means no key.
    noKeyDir = mkdtempSync(join(tmpdir(), 'taskhub-cli-'));
  });
  afterAll(async () => {
    rmSync(noKeyDir, { recursive: true, force: true });
    await t.close();
  });
  beforeEach(async () => {
    await truncate(t.db, 'task_events, tasks');
  });

  /** Runs `taskhub …args` with TASKHUB_URL/TASKHUB_KEY (client key) unless `env` says otherwise. */
  async function cli(args: string[], env: CliEnv = {}): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
    const fullEnv: CliEnv = { TASKHUB_URL: t.url, TASKHUB_KEY: t.keys.client, DATA_DIR: noKeyDir, ...env };
    const code = await runCli(args, io, fullEnv, { cwd: noKeyDir });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function submitJson(...extra: string[]): Promise<TaskJson> {
    const r = await cli(['tasks', 'submit', '--json', ...extra]);
    expect(r).toMatchObject({ code: 0, err: '' });
    return JSON.parse(r.out) as TaskJson;
  }

  async function apiGet<T>(path: string): Promise<T> {
    const res = await fetch(`${t.url}${path}`, { headers: bearer(t.keys.client) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { data: T }).data;
  }

  it('submits a task and prints it as a key/value block', async () => {
    const r = await cli([
      'tasks',
      'submit',
      '--prompt',
      'Analyze the codebase',
      '--type',
      'analysis',
      '--priority',
      'high',
      '--tag',
      'security',
      '--tag',
      'nightly',
      '--work-directory',
      '/home/user/project',
      '--timeout-seconds',
      '600',
      '--max-retries',
      '5',
      '--data',
      '{"files":2}',
    ]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^task_id:\s+[0-9a-f-]{36}$/m);
    expect(r.out).toMatch(/^status:\s+waiting \(pending\)$/m);
    expect(r.out).toMatch(/^priority:\s+high$/m);
    expect(r.out).toMatch(/^tags:\s+security, nightly$/m);
    expect(r.out).toMatch(/^retries:\s+0\/5$/m);
    expect(r.out).toMatch(/^prompt:\s+Analyze the codebase$/m);

    const id = UUID.exec(r.out)?.[0] as string;
    const stored = await apiGet<TaskJson>(`/api/v1/tasks/${id}`);
    expect(stored).toMatchObject({
      type: 'analysis',
      prompt: 'Analyze the codebase',
      priority: 'high',
      tags: ['security', 'nightly'],
      work_directory: '/home/user/project',
      timeout_seconds: 600,
      max_retries: 5,
      data: { files: 2 },
    });
  });

  it('submit --json prints the raw data; the idempotency key returns the first task', async () => {
    const first = await submitJson('--prompt', 'once', '--idempotency-key', 'cli-key-1');
    expect(first.task_id).toMatch(UUID);
    expect(first).toMatchObject({ status: 'waiting', state: 'pending', priority: 'medium', prompt: 'once' });
    const again = await submitJson('--prompt', 'once', '--idempotency-key', 'cli-key-1');
    expect(again.task_id).toBe(first.task_id);
    const list = await apiGet<ListJson>('/api/v1/tasks');
    expect(list.pagination.total).toBe(1);
  });

  it('lists with filters, as a table and as JSON, with pagination', async () => {
    const a = await submitJson('--prompt', 'alpha', '--priority', 'high', '--tag', 'x');
    const b = await submitJson('--prompt', 'beta', '--priority', 'high');
    const c = await submitJson('--prompt', 'gamma', '--priority', 'low', '--tag', 'x');

    const high = await cli(['tasks', 'list', '--priority', 'high', '--json']);
    expect(high.code).toBe(0);
    const highJson = JSON.parse(high.out) as ListJson;
    expect(highJson.tasks.map((x) => x.task_id).sort()).toEqual([a.task_id, b.task_id].sort());
    expect(highJson.pagination).toEqual({
      total: 2,
      limit: 50,
      offset: 0,
      has_more: false,
      next_cursor: null,
      total_capped: false,
    });

    const tagged = await cli(['tasks', 'list', '--tag', 'x']);
    expect(tagged.code).toBe(0);
    const lines = tagged.out.split('\n');
    expect(lines[0]).toMatch(/^TASK_ID\s+STATUS\s+STATE\s+PRIORITY\s+TYPE\s+ATTEMPT\s+CREATED_AT\s+PROMPT$/);
    expect(lines).toHaveLength(4); // header, two rows, footer
    expect(tagged.out).toContain(a.task_id);
    expect(tagged.out).toContain(c.task_id);
    expect(tagged.out).not.toContain(b.task_id);
    expect(lines[3]).toBe('1-2 of 2');
    // Columns line up: every row's STATUS starts where the header's does.
    const statusCol = lines[0].indexOf('STATUS');
    expect(lines[1].slice(statusCol, statusCol + 'waiting'.length)).toBe('waiting');

    const page = await cli(['tasks', 'list', '--limit', '1', '--offset', '1']);
    expect(page.code).toBe(0);
    expect(page.out.split('\n').at(-1)).toBe('2-2 of 3 (more: --offset 2)');

    const none = await cli(['tasks', 'list', '--status', 'completed']);
    expect(none).toMatchObject({ code: 0, out: 'no tasks (total 0)' });
  });

  it('shows one task (table and --json)', async () => {
    const task = await submitJson('--prompt', 'show me', '--tag', 'one');
    const human = await cli(['tasks', 'show', task.task_id]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(new RegExp(`^task_id:\\s+${task.task_id}$`, 'm'));
    expect(human.out).toMatch(/^prompt:\s+show me$/m);
    expect(human.out).toMatch(/^tags:\s+one$/m);

    const json = await cli(['tasks', 'show', task.task_id, '--json', '--url', t.url, '--key', t.keys.admin], {
      TASKHUB_URL: 'http://127.0.0.1:9',
    });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual(await apiGet<TaskJson>(`/api/v1/tasks/${task.task_id}`));
  });

  it('cancels with a reason, then retries the cancelled task', async () => {
    const task = await submitJson('--prompt', 'to cancel');
    const cancelled = await cli(['tasks', 'cancel', task.task_id, '--reason', 'not needed']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.out).toMatch(/^status:\s+cancelled \(cancelled\)$/m);
    expect(cancelled.out).toMatch(/^reason:\s+not needed$/m);

    const again = await cli(['tasks', 'cancel', task.task_id]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^error CONFLICT: /);

    const retried = await cli(['tasks', 'retry', task.task_id, '--json']);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.out)).toMatchObject({
      task_id: task.task_id,
      status: 'waiting',
      state: 'pending',
      retry_count: 1,
    });

    // Not finished any more: retry is refused.
    const refused = await cli(['tasks', 'retry', task.task_id]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^error CONFLICT: Task is pending/);
  });

  it('retry past max_retries needs --force', async () => {
    const task = await submitJson('--prompt', 'no retries', '--max-retries', '0');
    expect((await cli(['tasks', 'cancel', task.task_id])).code).toBe(0);
    const refused = await cli(['tasks', 'retry', task.task_id]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('error RETRY_LIMIT_EXCEEDED');
    const forced = await cli(['tasks', 'retry', task.task_id, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.out)).toMatchObject({ status: 'waiting', retry_count: 1 });
  });

  it("prints a task's logs, filtered by level", async () => {
    const task = await submitJson('--prompt', 'with logs');
    const claim = await fetch(`${t.url}/api/v1/tasks/next?worker_id=cli-worker`, { headers: bearer(t.keys.worker) });
    expect(((await claim.json()) as { data: TaskJson }).data.task_id).toBe(task.task_id);
    const hb = await fetch(`${t.url}/api/v1/tasks/${task.task_id}/heartbeat`, {
      method: 'POST',
      headers: { ...bearer(t.keys.worker), 'Content-Type': 'application/json' },
      body: JSON.stringify({ worker_id: 'cli-worker' }),
    });
    expect(hb.status).toBe(200);

    const all = await cli(['tasks', 'logs', task.task_id, '--json']);
    expect(all.code).toBe(0);
    const logs = JSON.parse(all.out) as LogsJson;
    expect(logs.task_id).toBe(task.task_id);
    const types = logs.logs.map((l) => l.type);
    expect(types).toEqual(expect.arrayContaining(['created', 'claimed', 'heartbeat']));

    const info = JSON.parse((await cli(['tasks', 'logs', task.task_id, '--level', 'info', '--json'])).out) as LogsJson;
    expect(info.logs.map((l) => l.type)).not.toContain('heartbeat');
    expect(info.logs.length).toBe(logs.logs.length - 1);

    const human = await cli(['tasks', 'logs', task.task_id, '--limit', '1']);
    expect(human.code).toBe(0);
    const lines = human.out.split('\n');
    expect(lines[0]).toMatch(/^TIMESTAMP\s+LEVEL\s+TYPE\s+ATTEMPT\s+MESSAGE$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+\s+(debug|info|warn|error)\s+\w+/);
  });

  it('an unknown task: NOT_FOUND on stderr, exit code 1', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const args of [
      ['show', id],
      ['logs', id],
      ['cancel', id],
      ['show', id, '--json'],
    ]) {
      const r = await cli(['tasks', ...args]);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^error NOT_FOUND: /);
    }
  });

  it('a validation error names the field', async () => {
    const r = await cli(['tasks', 'submit', '--work-directory', 'relative/path', '--prompt', 'x']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error VALIDATION_ERROR: .+\n {2}field work_directory/);
  });

  it('without a key: UNAUTHORIZED; a DATA_DIR/admin.key is used when present', async () => {
    const r = await cli(['tasks', 'list'], { TASKHUB_KEY: undefined });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^error UNAUTHORIZED: /);

    const wrong = await cli(['tasks', 'list', '--key', 'not-a-key']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^error UNAUTHORIZED: /);

    const dir = mkdtempSync(join(tmpdir(), 'taskhub-cli-key-'));
    try {
      writeFileSync(join(dir, 'admin.key'), `${t.keys.admin}\n`);
      const withFile = await cli(['tasks', 'list', '--json'], { TASKHUB_KEY: undefined, DATA_DIR: dir });
      expect(withFile.code).toBe(0);
      expect(JSON.parse(withFile.out)).toMatchObject({ tasks: [], pagination: { total: 0 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable hub: NETWORK_ERROR, exit code 1', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const r = await cli(['tasks', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error NETWORK_ERROR: cannot reach http:\/\/127\.0\.0\.1:\d+/);
  });

  it('bad arguments are refused before any request; --help exits 0', async () => {
    const bad = await cli(['tasks', 'submit', '--prompt', 'x', '--priority', 'huge']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("argument 'huge' is invalid");
    const badJson = await cli(['tasks', 'submit', '--data', '{nope']);
    expect(badJson.code).toBe(1);
    expect(badJson.err).toContain('not valid JSON');
    const badInt = await cli(['tasks', 'list', '--limit', 'ten']);
    expect(badInt.code).toBe(1);
    expect(badInt.err).toContain('not an integer');
    expect((await apiGet<ListJson>('/api/v1/tasks')).pagination.total).toBe(0);

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: taskhub');
    expect(help.out).toMatch(/server \[options\]/);
    expect(help.out).toMatch(/tasks\s/);
    const unknown = await cli(['taks']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("unknown command 'taks'");
  });

  it('server maps its flags onto a copy of the environment', async () => {
    const seen: CliEnv[] = [];
    const out: string[] = [];
    const env: CliEnv = { PORT: '1234', HOST: '0.0.0.0', LOG_LEVEL: 'warn', AUTH_REQUIRED: 'true' };
    const deps = { startServer: async (e: CliEnv) => void seen.push(e) };
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
    const code = await runCli(
      [
        'server',
        '--port',
        '3999',
        '--host',
        '127.0.0.1',
        '--cors-origin',
        'https://a.example',
        '--no-auth',
        '--data-dir',
        '/tmp/x',
        '--database-url',
        'postgres://u@h/db',
      ],
      io,
      env,
      deps,
    );
    expect(code).toBe(0);
    expect(seen).toEqual([
      {
        PORT: '3999',
        HOST: '127.0.0.1',
        CORS_ORIGIN: 'https://a.example',
        AUTH_REQUIRED: 'false',
        DATA_DIR: '/tmp/x',
        DATABASE_URL: 'postgres://u@h/db',
        LOG_LEVEL: 'warn',
      },
    ]);
    expect(env.PORT).toBe('1234'); // the caller's env is not modified

    // Without flags the environment passes through untouched.
    expect(await runCli(['server'], io, env, deps)).toBe(0);
    expect(seen[1]).toEqual(env);
    expect(seen[1]).not.toBe(env);

    expect(await runCli(['server', '--port', '70000'], io, env, deps)).toBe(1);
    expect(seen).toHaveLength(2);
  });
});
