import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BUILT_MAIN, HubProcess } from '../support/hub-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const run = promisify(execFile);
const CLI = resolve('dist/src/cli/main.js');

// The documents' own executables (seed 000 `codex-father`, seed 003 `myagent-manager`) are
// bin aliases of the CLI: installed under those names they work as written.
const skipReason = HubProcess.canRun() ? null : `${BUILT_MAIN} is missing (run npm run build)`;
if (skipReason) process.stdout.write(`\n[cli-aliases] skipped: ${skipReason}\n`);

(skipReason ? describe.skip : describe)('CLI under the seeds’ executable names', () => {
  let dir: string;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskhub-bins-'));
    for (const name of ['codex-father', 'myagent-manager']) symlinkSync(CLI, join(dir, name));
    t = await startTestApp();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.close();
  });

  const exec = (name: string, args: string[]) =>
    run(process.execPath, [join(dir, name), ...args], {
      env: { ...process.env, NODE_OPTIONS: '', TASKHUB_URL: t.url, TASKHUB_KEY: t.keys.admin },
    });

  it('package.json installs both names', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin).toMatchObject({
      taskhub: 'dist/src/cli/main.js',
      'codex-father': 'dist/src/cli/main.js',
      'myagent-manager': 'dist/src/cli/main.js',
    });
  });

  it('codex-father server --help takes the document’s --port', async () => {
    const { stdout } = await exec('codex-father', ['server', '--help']);
    expect(stdout).toMatch(/^Usage: codex-father server/);
    expect(stdout).toContain('--port');
  });

  it('myagent-manager status and list talk to the hub', async () => {
    const status = await exec('myagent-manager', ['status']);
    expect(status.stdout.length).toBeGreaterThan(0);
    const list = await exec('myagent-manager', ['list']);
    expect(list.stdout).toBeDefined();
    const help = await exec('myagent-manager', ['--help']);
    expect(help.stdout).toMatch(/^Usage: myagent-manager/);
  });
});
