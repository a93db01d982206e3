import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ClientOptions, emit, intArg, makeClient, withClientOptions } from '../client-options.js';
import { action, type CliContext } from '../context.js';
import { type HubClient, HubError } from '../http-client.js';
import { repeat } from '../repeat.js';
import { SERVICES, servicePath } from './services.js';
import {
  type HealthCheck,
  type HealthHistory,
  type LogEntry,
  type Overview,
  renderHealth,
  renderHealthCheck,
  renderLogLine,
  renderOverview,
  renderService,
  renderServiceList,
  type ServiceHealth,
  type ServiceList,
  type ServiceLogs,
  type ServiceView,
} from './service-views.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const OVERVIEW = '/api/v1/stats/overview';
const HEALTH = '/api/v1/health/services';
const LOGS = '/api/v1/logs/services';
/** Clear the screen and move the cursor home. */
const CLEAR = '\x1b[2J\x1b[H';
/** Entries one `--follow` poll asks for (the hub's maximum). */
const FOLLOW_BATCH = 5000;

interface MonitorOptions extends ClientOptions {
  service?: string;
  interval: number;
  count?: number;
}

interface LogsOptions extends ClientOptions {
  level?: string;
  limit?: number;
  since?: string;
  follow?: boolean;
  interval: number;
}

function isoTime(value: string): string {
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(Date.parse(value)))
    throw new InvalidArgumentError('not an ISO 8601 time.');
  return value;
}

const ref = (name: string): string => encodeURIComponent(name);

/** One refresh of `monitor`: the data (for --json) and its rendering. */
async function snapshot(client: HubClient, service: string | undefined): Promise<{ data: unknown; text: string }> {
  if (service) {
    const [detail, health] = await Promise.all([
      client.get<ServiceView>(servicePath(service)),
      client.get<ServiceHealth>(`${HEALTH}/${ref(service)}`),
    ]);
    return { data: { service: detail, health }, text: `${renderService(detail)}\n\n${renderHealth(health)}` };
  }
  const [overview, services] = await Promise.all([
    client.get<Overview>(OVERVIEW),
    client.get<ServiceList>(SERVICES, { limit: 200 }),
  ]);
  return { data: { overview, services }, text: `${renderOverview(overview)}\n\n${renderServiceList(services)}` };
}

export function registerServiceMonitoring(program: Command, ctx: CliContext): void {
  withClientOptions(
    program.command('status').description('overall state of the agent services (GET /api/v1/stats/overview)'),
  ).action(
    action(ctx, async (opts: ClientOptions) => {
      const overview = await makeClient(opts, ctx).get<Overview>(OVERVIEW);
      emit(ctx, opts, overview, () => renderOverview(overview));
    }),
  );

  withClientOptions(
    program
      .command('monitor')
      .description(
        'live view, refreshed every --interval seconds until Ctrl-C: the overview and services, or one service with --service',
      ),
  )
    .option('--service <name>', 'watch this service (name or id): detail and health')
    .option('--interval <seconds>', 'seconds between refreshes', intArg(1, 3600), 5)
    .option('--count <n>', 'stop after this many refreshes', intArg(1))
    .action(
      action(ctx, async (opts: MonitorOptions) => {
        const client = makeClient(opts, ctx);
        const tty = ctx.deps.tty ?? process.stdout.isTTY === true;
        await repeat(ctx, opts.interval * 1000, opts.count, async (i) => {
          const snap = await snapshot(client, opts.service);
          // --json: one compact JSON document per line and refresh.
          if (opts.json) return ctx.io.out(JSON.stringify(snap.data));
          const of = opts.count ? ` (${i + 1}/${opts.count})` : ', Ctrl-C to stop';
          const text = `taskhub monitor — ${new Date().toISOString()} — every ${opts.interval}s${of}\n\n${snap.text}`;
          if (tty) ctx.io.out(`${CLEAR}${text}`);
          else ctx.io.out(i > 0 ? `\n${text}` : text);
        });
      }),
    );

  withClientOptions(
    program
      .command('logs')
      .argument('<name>', 'service name or id')
      .description("a service's process output and lifecycle events, oldest first"),
  )
    .addOption(new Option('--level <level>', 'this level and above').choices(LEVELS))
    .option('--limit <n>', 'the last n entries (1-5000, default 100)', intArg(1, FOLLOW_BATCH))
    .option('--since <time>', 'entries at or after this ISO 8601 time', isoTime)
    .option('--follow', 'keep printing new entries until Ctrl-C')
    .option('--interval <ms>', 'poll period of --follow in milliseconds', intArg(50, 60_000), 1000)
    .action(
      action(ctx, async (name: string, opts: LogsOptions) => {
        const client = makeClient(opts, ctx);
        const path = `${LOGS}/${ref(name)}`;
        const first = await client.get<ServiceLogs>(path, { level: opts.level, limit: opts.limit, since: opts.since });
        if (!opts.follow) {
          emit(ctx, opts, first, () =>
            first.logs.length ? first.logs.map(renderLogLine).join('\n') : `no log entries for ${first.name}`,
          );
          return;
        }
        // --follow: one line per entry (with --json one JSON object per line), polling after the last seq seen.
        let last = 0;
        const print = (entries: LogEntry[]): void => {
          for (const e of entries) {
            ctx.io.out(opts.json ? JSON.stringify(e) : renderLogLine(e));
            last = Math.max(last, e.seq);
          }
        };
        print(first.logs);
        await repeat(ctx, opts.interval, undefined, async (i) => {
          if (i === 0) return; // the first batch is printed above
          const next = await client.get<ServiceLogs>(path, {
            level: opts.level,
            since: opts.since,
            after_seq: last,
            limit: FOLLOW_BATCH,
          });
          print(next.logs);
        });
      }),
    );

  /** A check that ran and failed is HEALTH_CHECK_FAILED with the result in `details.health`: shown like a passing one. */
  const failedCheck = (e: unknown): HealthCheck => {
    const d = e instanceof HubError && e.code === 'HEALTH_CHECK_FAILED' ? e.details : null;
    const health = d?.health as
      { status: 'unhealthy'; response_time_ms: number; message: string | null; last_check: string | null } | undefined;
    if (!d || !health) throw e;
    return {
      service_id: String(d.service_id),
      name: String(d.name),
      status: health.status,
      response_time_ms: health.response_time_ms,
      message: health.message,
      checked_at: health.last_check,
    };
  };

  withClientOptions(
    program
      .command('health-check')
      .argument('<name>', 'service name or id')
      .description('check a running service now and show its latest checks; exit code 1 when unhealthy'),
  ).action(
    action(ctx, async (name: string, opts: ClientOptions) => {
      const client = makeClient(opts, ctx);
      const check = await client.post<HealthCheck>(`${HEALTH}/${ref(name)}/check`).catch(failedCheck);
      const history = await client.get<HealthHistory>(`${HEALTH}/${ref(name)}/history`, { limit: 5 });
      emit(ctx, opts, { ...check, history: history.history }, () => renderHealthCheck(check, history));
      return check.status === 'healthy' ? 0 : 1;
    }),
  );
}
