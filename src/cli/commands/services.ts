import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ClientOptions, emit, intArg, makeClient, withClientOptions } from '../client-options.js';
import { action, type CliContext } from '../context.js';
import {
  type CreateService,
  type Registered,
  type Removed,
  renderLifecycle,
  renderService,
  renderServiceList,
  type ServiceList,
  type ServiceView,
} from './service-views.js';

const STATUSES = ['stopped', 'starting', 'running', 'stopping', 'error'] as const;
const HEALTH_CHECKS = ['ws', 'tcp', 'http'] as const;
export const SERVICES = '/api/v1/services';

interface RegisterOptions extends ClientOptions {
  port?: number;
  tags?: string[];
  maxSessions?: number;
  host?: string;
  description?: string;
  command?: string;
  args?: string[];
  endpoint?: string;
  healthCheck?: NonNullable<CreateService['health_check']>['type'];
  healthPath?: string;
  autoRestart: boolean;
}

interface ListOptions extends ClientOptions {
  tag?: string;
  status?: string;
  limit?: number;
  offset?: number;
}

/** `:id` of the service routes: a name or a UUID, both accepted by the hub. */
export const servicePath = (ref: string, suffix = ''): string => `${SERVICES}/${encodeURIComponent(ref)}${suffix}`;

export const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** Splits `--args` as a shell would: whitespace separates, quotes group, a backslash escapes. */
export function splitArgs(value: string): string[] {
  const out: string[] = [];
  let word = '';
  let started = false;
  let quote: string | null = null;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < value.length) word += value[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (c === '\\' && i + 1 < value.length) {
      word += value[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) out.push(word);
      word = '';
      started = false;
    } else {
      word += c;
      started = true;
    }
  }
  if (quote) throw new InvalidArgumentError(`unterminated ${quote} quote.`);
  if (started) out.push(word);
  return out;
}

/**
 * A relative PATH that exists here is sent as an absolute path (the usual case: the hub runs
 * on this machine from another directory); anything else is a path on the hub's machine.
 */
function factoryPath(path: string, ctx: CliContext): string {
  if (isAbsolute(path)) return path;
  const full = resolve(ctx.deps.cwd ?? process.cwd(), path);
  return existsSync(full) ? full : path;
}

export function registerServices(program: Command, ctx: CliContext): void {
  withClientOptions(
    program
      .command('register')
      .argument('<name>', 'service name (letters, digits, . _ -)')
      .argument(
        '[path]',
        'agent_factory_path: the agent script or executable (not needed with --command or --endpoint)',
      )
      .description('register an agent service (POST /api/v1/services)'),
  )
    .option('--port <n>', 'port the agent listens on (0: a free port at each start)', intArg(0, 65535))
    .option('--tags <list>', 'comma list of tags (routing rules and `list --tag` use them)', commaList)
    .option('--max-sessions <n>', 'concurrent proxied connections', intArg(1, 1_000_000))
    .option('--host <host>', 'address the agent listens on (default 127.0.0.1)')
    .option('--description <text>', 'what it does')
    .option('--command <cmd>', 'executable to run instead of PATH')
    .option('--args <args>', 'its arguments, split like a shell; {port} and {host} are filled in', splitArgs)
    .option('--endpoint <url>', 'ws:// URL of an external service the hub does not run')
    .addOption(new Option('--health-check <type>', 'how health is checked (default tcp)').choices(HEALTH_CHECKS))
    .option('--health-path <path>', 'path of the http/ws health check')
    .option('--no-auto-restart', 'do not restart the process when it crashes')
    .action(
      action(ctx, async (name: string, path: string | undefined, opts: RegisterOptions, cmd: Command) => {
        if (!path && !opts.command && !opts.endpoint)
          cmd.error('error: PATH is required unless --command or --endpoint is given');
        const config = { max_sessions: opts.maxSessions, auto_restart: opts.autoRestart ? undefined : false };
        const body: CreateService = {
          name,
          description: opts.description,
          agent_factory_path: path ? factoryPath(path, ctx) : undefined,
          command: opts.command,
          args: opts.args,
          endpoint: opts.endpoint,
          host: opts.host,
          port: opts.port,
          tags: opts.tags,
          health_check:
            opts.healthCheck || opts.healthPath ? { type: opts.healthCheck, path: opts.healthPath } : undefined,
          config: Object.values(config).some((v) => v !== undefined) ? config : undefined,
        };
        const res = await makeClient(opts, ctx).post<Registered>(SERVICES, body);
        emit(
          ctx,
          opts,
          res,
          () => `${res.message}: ${res.service.name} (${res.service_id})\n${renderService(res.service)}`,
        );
      }),
    );

  const lifecycle: [string, string][] = [
    ['start', 'start a service; waits for its first passing health check'],
    ['stop', 'stop a service (SIGTERM, then SIGKILL after the grace period)'],
    ['restart', 'stop (if running), then start a service'],
  ];
  for (const [verb, description] of lifecycle) {
    withClientOptions(
      program
        .command(verb)
        .argument('<name>', 'service name or id')
        .description(`${description} (POST /api/v1/services/:id/${verb})`),
    ).action(
      action(ctx, async (name: string, opts: ClientOptions) => {
        const s = await makeClient(opts, ctx).post<ServiceView>(servicePath(name, `/${verb}`));
        emit(ctx, opts, s, () => renderLifecycle(s));
      }),
    );
  }

  withClientOptions(program.command('list').description('list agent services, oldest first (GET /api/v1/services)'))
    .option('--tag <tag>', 'only services with this tag')
    .addOption(new Option('--status <s>', 'only services in this state').choices(STATUSES))
    .option('--limit <n>', 'page size (1-200)', intArg(1, 200))
    .option('--offset <n>', 'skip this many', intArg(0))
    .action(
      action(ctx, async (opts: ListOptions) => {
        const { tag, status, limit, offset } = opts;
        const list = await makeClient(opts, ctx).get<ServiceList>(SERVICES, { tag, status, limit, offset });
        emit(ctx, opts, list, () => renderServiceList(list));
      }),
    );

  withClientOptions(
    program
      .command('show')
      .argument('<name>', 'service name or id')
      .description('show one service: config, live stats, health'),
  ).action(
    action(ctx, async (name: string, opts: ClientOptions) => {
      const s = await makeClient(opts, ctx).get<ServiceView>(servicePath(name));
      emit(ctx, opts, s, () => renderService(s));
    }),
  );

  withClientOptions(
    program
      .command('remove')
      .argument('<name>', 'service name or id')
      .description('stop a service if needed, then delete it'),
  ).action(
    action(ctx, async (name: string, opts: ClientOptions) => {
      const res = await makeClient(opts, ctx).delete<Removed>(servicePath(name));
      emit(ctx, opts, res, () => `${res.message}: ${res.name} (${res.service_id})`);
    }),
  );
}
