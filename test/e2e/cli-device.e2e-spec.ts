import { runCli } from '../../src/cli/program.js';
import { apiClient, type Api, type Task } from '../support/api.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** `taskhub device --exec` against the running hub: a real shell command per task. */
describe('taskhub device', () => {
  let t: TestApp;
  let client: Api;

  beforeAll(async () => {
    t = await startTestApp();
    client = apiClient(t, t.keys.client);
  });
  afterAll(() => t.close());

  const waitForState = async (id: string, state: string): Promise<Task> => {
    for (let i = 0; i < 200; i++) {
      const task = (await client.get<Task>(`/api/v1/tasks/${id}`)).body.data;
      if (task.state === state) return task;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`task ${id} never reached ${state}`);
  };

  it('runs the command with the task JSON on stdin and stores its stdout; a failing command fails the attempt', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const stop = new AbortController();
    const running = runCli(
      [
        'device',
        '--id',
        'cli-dev',
        '--capacity',
        '2',
        '--tags',
        'shell',
        '--exec',
        "node -e \"let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const t=JSON.parse(s);if(t.data.fail){console.error('asked to fail');process.exit(3)}process.stdout.write('ran '+t.task_type+' '+t.data.n)})\"",
        '--url',
        t.url,
        '--key',
        t.keys.worker,
      ],
      { out: (s) => out.push(s), err: (s) => err.push(s) },
      {},
      { stop: stop.signal },
    );
    try {
      for (let i = 0; i < 100 && !out.some((l) => l.startsWith('registered')); i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(out).toContain('registered as cli-dev (capacity 2)');
      const ok = (await client.post<Task>('/api/v1/tasks', { type: 'build', data: { n: 7 }, required_tags: ['shell'] }))
        .body.data;
      const done = await waitForState(ok.task_id, 'completed');
      expect(done.result).toEqual({ output: 'ran build 7', exit_code: 0 });
      expect(done.worker_id ?? (done as unknown as { node_id: string }).node_id).toBe('cli-dev');

      const bad = (await client.post<Task>('/api/v1/tasks', { type: 'build', data: { fail: true }, max_retries: 0 }))
        .body.data;
      const failed = await waitForState(bad.task_id, 'failed');
      expect(failed.error).toMatchObject({ message: 'asked to fail' });
      expect(err.some((l) => l.includes('asked to fail'))).toBe(true);
    } finally {
      stop.abort();
    }
    expect(await running).toBe(0);
  });

  it('exits 1 when the hub refuses its key', async () => {
    const err: string[] = [];
    const code = await runCli(
      ['device', '--id', 'nope', '--exec', 'true', '--url', t.url, '--key', 'th_wrong'],
      { out: () => undefined, err: (s) => err.push(s) },
      {},
      {},
    );
    expect(code).toBe(1);
    expect(err.join('\n')).toContain('UNAUTHORIZED');
  });
});
