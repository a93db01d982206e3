import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ClientOptions, emit, intArg, makeClient, withClientOptions } from '../client-options.js';
import { action, type CliContext } from '../context.js';
import {
  renderTask,
  renderTaskList,
  renderTaskLogs,
  type CreateTask,
  type TaskList,
  type TaskLogs,
  type TaskView,
} from './task-views.js';

const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const BASE = '/api/v1/tasks';

interface SubmitOptions extends ClientOptions {
  prompt?: string;
  type?: string;
  priority?: CreateTask['priority'];
  tag?: string[];
  workDirectory?: string;
  timeoutSeconds?: number;
  maxRetries?: number;
  data?: Record<string, unknown>;
  idempotencyKey?: string;
}

interface ListOptions extends ClientOptions {
  status?: string;
  priority?: string;
  tag?: string;
  type?: string;
  limit?: number;
  offset?: number;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new InvalidArgumentError('must be a JSON object.');
  return parsed as Record<string, unknown>;
}

const path = (id: string, suffix = ''): string => `${BASE}/${encodeURIComponent(id)}${suffix}`;

export function registerTasks(program: Command, ctx: CliContext): void {
  const tasks = program.command('tasks').description('submit and inspect tasks on a running hub');

  withClientOptions(tasks.command('submit').description('submit a task (POST /api/v1/tasks)'))
    .option('--prompt <text>', 'what to do (required unless --data is given)')
    .option('--type <type>', 'kind of work, used for routing and filters')
    .addOption(new Option('--priority <p>', 'priority').choices(PRIORITIES))
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .option('--work-directory <dir>', 'absolute path; pull workers claim by prefix')
    .option('--timeout-seconds <n>', 'seconds a holder has before the lease expires', intArg(1))
    .option('--max-retries <n>', 'automatic retries', intArg(0))
    .option('--data <json>', 'structured input (a JSON object)', jsonObject)
    .option('--idempotency-key <key>', 'same key → the first task is returned')
    .action(
      action(ctx, async (opts: SubmitOptions) => {
        const body: CreateTask = {
          prompt: opts.prompt,
          type: opts.type,
          priority: opts.priority,
          tags: opts.tag,
          work_directory: opts.workDirectory,
          timeout_seconds: opts.timeoutSeconds,
          max_retries: opts.maxRetries,
          data: opts.data,
        };
        const headers = opts.idempotencyKey ? { 'Idempotency-Key': opts.idempotencyKey } : undefined;
        const task = await makeClient(opts, ctx).post<TaskView>(BASE, body, headers);
        emit(ctx, opts, task, () => renderTask(task));
      }),
    );

  withClientOptions(tasks.command('list').description('list tasks, newest first (GET /api/v1/tasks)'))
    .option('--status <s>', 'comma list: waiting, working, completed, failed, cancelled, timed_out or exact states')
    .option('--priority <p>', 'comma list of low, medium, high, urgent')
    .option('--tag <tag>', 'only tasks with this tag')
    .option('--type <type>', 'only tasks of this type')
    .option('--limit <n>', 'page size (1-200)', intArg(1, 200))
    .option('--offset <n>', 'skip this many', intArg(0))
    .action(
      action(ctx, async (opts: ListOptions) => {
        const { status, priority, tag, type, limit, offset } = opts;
        const list = await makeClient(opts, ctx).get<TaskList>(BASE, { status, priority, tag, type, limit, offset });
        emit(ctx, opts, list, () => renderTaskList(list));
      }),
    );

  withClientOptions(tasks.command('show').argument('<id>', 'task id').description('show one task')).action(
    action(ctx, async (id: string, opts: ClientOptions) => {
      const task = await makeClient(opts, ctx).get<TaskView>(path(id));
      emit(ctx, opts, task, () => renderTask(task));
    }),
  );

  withClientOptions(
    tasks.command('cancel').argument('<id>', 'task id').description('cancel a task that has not finished'),
  )
    .option('--reason <text>', 'why (kept on the task)')
    .action(
      action(ctx, async (id: string, opts: ClientOptions & { reason?: string }) => {
        const task = await makeClient(opts, ctx).post<TaskView>(path(id, '/cancel'), { reason: opts.reason });
        emit(ctx, opts, task, () => renderTask(task));
      }),
    );

  withClientOptions(tasks.command('retry').argument('<id>', 'task id').description('re-queue a finished task'))
    .option('--force', 'retry even past max_retries')
    .action(
      action(ctx, async (id: string, opts: ClientOptions & { force?: boolean }) => {
        const task = await makeClient(opts, ctx).post<TaskView>(path(id, '/retry'), { force: opts.force === true });
        emit(ctx, opts, task, () => renderTask(task));
      }),
    );

  withClientOptions(tasks.command('logs').argument('<id>', 'task id').description("a task's events, oldest first"))
    .addOption(new Option('--level <level>', 'minimum level').choices(LEVELS))
    .option('--limit <n>', 'at most this many (1-1000)', intArg(1, 1000))
    .action(
      action(ctx, async (id: string, opts: ClientOptions & { level?: string; limit?: number }) => {
        const logs = await makeClient(opts, ctx).get<TaskLogs>(path(id, '/logs'), {
          level: opts.level,
          limit: opts.limit,
        });
        emit(ctx, opts, logs, () => renderTaskLogs(logs));
      }),
    );
}
