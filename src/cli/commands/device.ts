import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { type AssignedTask, DeviceClient } from '../../sdk/device-client.js';
import { DEFAULT_URL, intArg, resolveKey } from '../client-options.js';
import { action, type CliContext } from '../context.js';

interface DeviceOptions {
  id: string;
  name?: string;
  capacity: number;
  tags?: string;
  capabilities?: string;
  exec: string;
  node?: boolean;
  url?: string;
  key?: string;
}

const list = (s: string | undefined): string[] =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : [];

/**
 * Runs `command` through the shell for one task: the task JSON on stdin, stdout is the
 * output. Exit 0 succeeds; anything else fails the attempt with stderr. Cancel kills it.
 */
export function runCommand(
  command: string,
  task: AssignedTask,
  signal: AbortSignal,
): Promise<{ output: string; exit_code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TASKHUB_TASK_ID: task.task_id },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = (): void => {
      child.kill('SIGTERM');
    };
    signal.addEventListener('abort', kill, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      signal.removeEventListener('abort', kill);
      if (signal.aborted) reject(new Error('cancelled'));
      else if (code === 0) resolve({ output: stdout, exit_code: 0 });
      else reject(new Error(stderr.trim() || `command exited with code ${code}`));
    });
    child.stdin.on('error', () => undefined); // a command that ignores stdin may close it early
    child.stdin.end(JSON.stringify(task));
  });
}

export function registerDevice(program: Command, ctx: CliContext): void {
  program
    .command('device')
    .description(
      'run a device: take tasks pushed by the hub and run a command for each (task JSON on stdin, stdout is the output)',
    )
    .requiredOption('--id <id>', 'device id (re-using an id replaces the older connection)')
    .requiredOption('--exec <command>', 'shell command to run per task')
    .option('--name <name>', 'display name')
    .option('--capacity <n>', 'tasks at once', intArg(1, 10_000), 1)
    .option('--tags <list>', 'comma list of tags (tasks with required_tags need them)')
    .option('--capabilities <list>', 'comma list of task types it takes (default: any)')
    .option('--node', 'register with the Apex vocabulary (node_register / task_assign)')
    .option('--url <url>', `hub base URL (default: $TASKHUB_URL or ${DEFAULT_URL})`)
    .option('--key <key>', 'worker API key (default: $TASKHUB_KEY, else ./data/admin.key if present)')
    .action(
      action(ctx, async (opts: DeviceOptions) => {
        const device = new DeviceClient({
          url: opts.url || ctx.env.TASKHUB_URL || DEFAULT_URL,
          key: resolveKey(opts, ctx),
          id: opts.id,
          name: opts.name,
          capacity: opts.capacity,
          tags: list(opts.tags),
          capabilities: list(opts.capabilities),
          vocabulary: opts.node ? 'node' : 'device',
        }).onTask(async ({ task, signal }) => {
          ctx.io.out(`task ${task.task_id} (${task.task_type}, attempt ${task.attempt}) started`);
          try {
            const result = await runCommand(opts.exec, task, signal);
            ctx.io.out(`task ${task.task_id} done`);
            return result;
          } catch (e) {
            ctx.io.err(`task ${task.task_id} failed: ${(e as Error).message}`);
            throw e;
          }
        });
        device.on('disconnected', (reason: string) => ctx.io.err(`disconnected (${reason}); reconnecting`));
        device.on('registered', () => ctx.io.out(`registered as ${opts.id} (capacity ${opts.capacity})`));
        try {
          await device.connect();
        } catch (e) {
          const body = e instanceof Error ? e.message : String(e);
          ctx.io.err(`error: could not register: ${body}`);
          device.close();
          return 1;
        }
        await new Promise<void>((resolve) => {
          if (ctx.deps.stop) {
            if (ctx.deps.stop.aborted) resolve();
            ctx.deps.stop.addEventListener('abort', () => resolve(), { once: true });
          } else {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          }
        });
        device.close();
      }),
    );
}
