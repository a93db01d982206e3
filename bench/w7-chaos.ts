// W7 (BENCHMARKS.md): faults. 240 tasks, 8 devices (capacity 1, 0.3 s tasks) that send no
// heartbeat events; once half of the tasks are completed, one fault:
//   hub-sigkill      SIGKILL the hub, start a new one on the same port 1 s later
//                    (recovery = the new hub answers /healthz)
//   pg-outage        cut the hub's PostgreSQL connections (a TcpProxy in front of it) for 3 s
//                    (recovery = the proxy lets connections through again)
//   hub-sigkill-sdk, pg-outage-sdk   the same with devices on the SDK (src/sdk) instead of
//                    seed-004 clients written on socket.io-client
// Every number comes from the database (read directly, not through the proxy) or from the
// devices' own record of what they executed. One JSON line per scenario.
//
//   npm run bench:chaos [-- --scenario <name>]
//   BENCH_GRACE_MS       NODE_RECONNECT_GRACE_MS of the hub (default 5000)
//   BENCH_W7_TIMEOUT_MS  hard limit per scenario (default 240000)
//   BENCH_DEVICE_KEY     token for the devices (the bench hub runs with AUTH_REQUIRED=false)
//   passed to the hub when set: DISPATCH_ACK_TIMEOUT_MS, REPORT_RETRY_MS, SOCKET_PING_INTERVAL_MS,
//   SOCKET_PING_TIMEOUT_MS, HUB_INSTANCE_HEARTBEAT_MS, HUB_INSTANCE_STALE_MS
//   BENCH_DB_SUFFIX      appended to each scenario's database name (taskhub_bench_w7_<scenario>)
import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { TcpProxy, proxiedUrl } from '../test/support/tcp-proxy.js';
import type { Execution } from './chaos-fleet.js';
import { freshDatabase, Hub, postJson, round, sleep } from './lib/services.js';

const TASKS = 240;
const DEVICES = 8;
const TASK_MS = 300;
const GRACE_MS = Number(process.env.BENCH_GRACE_MS ?? 5000);
const SCENARIO_TIMEOUT_MS = Number(process.env.BENCH_W7_TIMEOUT_MS ?? 240_000);
const WAIT_AFTER_RECOVERY_MS = 90_000;
const OUTAGE_MS = 3000;
const RESTART_AFTER_MS = 1000;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timed_out'];
const PASS_THROUGH = [
  'DISPATCH_ACK_TIMEOUT_MS',
  'REPORT_RETRY_MS',
  'SOCKET_PING_INTERVAL_MS',
  'SOCKET_PING_TIMEOUT_MS',
  'HUB_INSTANCE_HEARTBEAT_MS',
  'HUB_INSTANCE_STALE_MS',
];

interface Scenario {
  fault: 'hub-sigkill' | 'pg-outage';
  sdk: boolean;
  /** All tasks done at most this long after recovery (BENCHMARKS.md: 15 s with a 5 s grace, 10 s after PostgreSQL). */
  limitS: number;
}
const SCENARIOS: Record<string, Scenario> = {
  'hub-sigkill': { fault: 'hub-sigkill', sdk: false, limitS: GRACE_MS / 1000 + 10 },
  'pg-outage': { fault: 'pg-outage', sdk: false, limitS: 10 },
  'hub-sigkill-sdk': { fault: 'hub-sigkill', sdk: true, limitS: GRACE_MS / 1000 + 10 },
  'pg-outage-sdk': { fault: 'pg-outage', sdk: true, limitS: 10 },
};

interface FleetReport {
  executions: Execution[];
  disconnects: Record<string, number>;
  connect_errors: number;
  server_shutdowns: number;
  registrations: number;
  hub_errors: Record<string, number>;
}

/** Everything a scenario started, so it can be torn down whatever state the run is in. */
interface Resources {
  proxy?: TcpProxy;
  hubs: Hub[];
  fleet?: ChildProcess;
  db?: pg.Client;
}

const isAlive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>(
    (_, fail) => (timer = setTimeout(() => fail(new Error(`${what}: no answer after ${ms} ms`)), ms)),
  );
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function startFleet(url: string, prefix: string, sdk: boolean): Promise<ChildProcess> {
  const key = process.env.BENCH_DEVICE_KEY;
  const args = [url, String(DEVICES), prefix, String(TASK_MS), ...(key ? [key] : []), ...(sdk ? ['--sdk'] : [])];
  const child = fork(resolve('dist/bench/chaos-fleet.js'), args, { stdio: 'inherit' });
  // The Hub helper kills its hubs on exit; the fleet is ours to kill.
  process.once('exit', () => child.kill('SIGKILL'));
  const ready = new Promise<ChildProcess>((ok, fail) => {
    child.on('message', (m: { type: string }) => m.type === 'ready' && ok(child));
    child.once('exit', (code) => fail(new Error(`chaos fleet exited ${code} before it was ready`)));
  });
  return withTimeout(ready, 30_000, 'chaos fleet registration').catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
}

function fleetReport(fleet: ChildProcess): Promise<FleetReport> {
  const answer = new Promise<FleetReport>((ok) => {
    const onMessage = (m: { type: string } & FleetReport): void => {
      if (m.type !== 'executions') return;
      fleet.off('message', onMessage);
      ok(m);
    };
    fleet.on('message', onMessage);
    fleet.send({ type: 'report' });
  });
  return withTimeout(answer, 10_000, 'chaos fleet report');
}

async function count(db: pg.Client, where: string): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM tasks WHERE ${where}`);
  return (rows[0] as { n: number }).n;
}

/** Tasks executed more than once, and those of them whose executions on different devices overlap in time. */
function duplicates(
  executions: Execution[],
  now: number,
): { duplicate: number; concurrent: number; concurrentIds: string[] } {
  const byTask = new Map<string, Execution[]>();
  for (const e of executions) byTask.set(e.task_id, [...(byTask.get(e.task_id) ?? []), e]);
  let duplicate = 0;
  const concurrentIds: string[] = [];
  for (const [taskId, list] of byTask) {
    if (list.length < 2) continue;
    duplicate++;
    // A run still going at report time counts as running until now.
    const overlap = list.some((a, i) =>
      list.slice(i + 1).some((b) => a.device !== b.device && a.start < (b.end ?? now) && b.start < (a.end ?? now)),
    );
    if (overlap) concurrentIds.push(taskId);
  }
  return { duplicate, concurrent: concurrentIds.length, concurrentIds };
}

async function run(
  name: string,
  s: Scenario,
  res: Resources,
): Promise<{ line: Record<string, unknown>; met: boolean }> {
  const dbUrl = await freshDatabase(`taskhub_bench_w7_${name.replace(/-/g, '_')}`);
  const target = new URL(dbUrl);
  res.proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const proxyPort = await res.proxy.start();
  const env: Record<string, string> = {
    DATABASE_URL: proxiedUrl(dbUrl, proxyPort),
    NODE_RECONNECT_GRACE_MS: String(GRACE_MS),
  };
  for (const key of PASS_THROUGH) if (process.env[key]) env[key] = process.env[key] as string;

  const first = new Hub(env);
  res.hubs.push(first);
  await first.start();
  const hubPort = Number(new URL(first.url).port);
  res.db = new pg.Client({ connectionString: dbUrl });
  const db = res.db;
  await db.connect();
  res.fleet = await startFleet(first.url, `w7-${name}`, s.sdk);
  let fleetExit: string | null = null;
  res.fleet.once('exit', (code, signal) => (fleetExit = `${code ?? signal}`));

  const answer = await postJson<{ data: { results: { success: boolean; task_id?: string }[] } }>(
    `${first.url}/api/v1/tasks/batch`,
    {
      tasks: Array.from({ length: TASKS }, (_, i) => ({ type: 'work', data: { i }, max_retries: 5 })),
    },
  );
  const ids = answer.data.results.filter((r) => r.success && r.task_id).map((r) => r.task_id as string);
  const acknowledged = ids.length;

  const halfDeadline = Date.now() + 60_000;
  while ((await count(db, `status = 'completed'`)) < Math.ceil(acknowledged / 2)) {
    if (Date.now() > halfDeadline)
      throw new Error(
        `half of the tasks not completed 60 s after submission (before any fault)\n${first.log.slice(-2000)}`,
      );
    await sleep(20);
  }
  const completedAtFault = await count(db, `status = 'completed'`);

  // The fault.
  const faultAt = Date.now();
  let current = first;
  let pgConnectionsCut: number | undefined;
  if (s.fault === 'hub-sigkill') {
    const pid = first.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    while (isAlive(pid) && Date.now() - faultAt < 5000) await sleep(10);
    await sleep(Math.max(0, faultAt + RESTART_AFTER_MS - Date.now()));
    current = new Hub(env, { port: hubPort });
    res.hubs.push(current);
    await current.start();
  } else {
    pgConnectionsCut = res.proxy.connections;
    res.proxy.cut();
    await sleep(OUTAGE_MS);
    res.proxy.restore();
  }
  const recoveredAt = Date.now();
  const completedAtRecovery = await count(db, `status = 'completed'`);

  // Until every acknowledged task is terminal, 90 s after recovery, or the hub is gone.
  const terminal = `status IN (${TERMINAL.map((t) => `'${t}'`).join(', ')})`;
  while (Date.now() - recoveredAt < WAIT_AFTER_RECOVERY_MS) {
    if ((await count(db, terminal)) >= acknowledged && (await count(db, `NOT (${terminal})`)) === 0) break;
    if (!isAlive(current.pid)) break;
    await sleep(100);
  }
  const waitedS = (Date.now() - recoveredAt) / 1000;
  // Let a run that started just before the end finish, so it is recorded with its end.
  await sleep(TASK_MS + 500);
  const hubAlive = isAlive(current.pid);

  const statusRows = (await db.query(`SELECT status, count(*)::int AS n FROM tasks GROUP BY status ORDER BY status`))
    .rows as { status: string; n: number }[];
  const statuses = Object.fromEntries(statusRows.map((r) => [r.status, r.n]));
  const [agg] = (
    await db.query(
      `SELECT count(*) FILTER (WHERE t.status = 'completed')::int AS completed,
              count(*) FILTER (WHERE t.id IS NULL)::int AS missing,
              count(*) FILTER (WHERE t.status IN ('failed', 'cancelled', 'timed_out'))::int AS failed,
              count(*) FILTER (WHERE t.id IS NOT NULL AND t.status NOT IN (${TERMINAL.map((x) => `'${x}'`).join(', ')}))::int AS stuck,
              count(*) FILTER (WHERE t.attempt > 1)::int AS redelivered,
              coalesce(max(t.attempt), 0)::int AS max_attempt,
              (extract(epoch FROM max(t.completed_at) FILTER (WHERE t.status = 'completed')) * 1000)::float8 AS last_completed
       FROM unnest($1::uuid[]) AS a(id) LEFT JOIN tasks t ON t.id = a.id`,
      [ids],
    )
  ).rows as {
    completed: number;
    missing: number;
    failed: number;
    stuck: number;
    redelivered: number;
    max_attempt: number;
    last_completed: number | null;
  }[];
  const [{ dup_completions }] = (
    await db.query(
      `SELECT count(*)::int AS dup_completions FROM (SELECT task_id FROM task_events WHERE type = 'completed' GROUP BY task_id HAVING count(*) > 1) d`,
    )
  ).rows as { dup_completions: number }[];

  const report =
    fleetExit === null
      ? await fleetReport(res.fleet)
      : { executions: [], disconnects: {}, connect_errors: 0, server_shutdowns: 0, registrations: 0, hub_errors: {} };
  const dup = duplicates(report.executions, Date.now());
  const lost = acknowledged - agg.completed;
  // Only defined once every acknowledged task completed: otherwise there is no "all done" moment.
  const recoveryS = lost === 0 && agg.last_completed !== null ? round((agg.last_completed - recoveredAt) / 1000) : null;
  const met =
    acknowledged === TASKS &&
    lost === 0 &&
    agg.stuck === 0 &&
    dup.concurrent === 0 &&
    recoveryS !== null &&
    recoveryS <= s.limitS;
  const recoveryName = s.fault === 'hub-sigkill' ? 'the new hub answers /healthz' : 'PostgreSQL reachable again';
  const line: Record<string, unknown> = {
    workload: 'W7-faults',
    scenario: name,
    client: s.sdk ? 'sdk DeviceClient' : 'seed-004 socket.io-client',
    devices: DEVICES,
    tasks: TASKS,
    acknowledged,
    completed: agg.completed,
    lost,
    missing: agg.missing,
    stuck: agg.stuck,
    stuck_by_status: Object.fromEntries(Object.entries(statuses).filter(([k]) => !TERMINAL.includes(k))),
    failed: agg.failed,
    statuses,
    executions: report.executions.length,
    duplicate_executions: dup.duplicate,
    concurrent_duplicates: dup.concurrent,
    ...(dup.concurrent ? { concurrent_duplicate_tasks: dup.concurrentIds.slice(0, 5) } : {}),
    duplicate_completion_events: dup_completions,
    redelivered_tasks: agg.redelivered,
    max_attempt: agg.max_attempt,
    completed_at_fault: completedAtFault,
    completed_at_recovery: completedAtRecovery,
    completed_after_recovery: agg.completed - completedAtRecovery,
    fault_to_recovery_s: round((recoveredAt - faultAt) / 1000),
    recovery_moment: recoveryName,
    recovery_to_last_completion_s: recoveryS,
    waited_after_recovery_s: round(waitedS, 1),
    hub_alive_at_end: hubAlive,
    ...(pgConnectionsCut !== undefined ? { pg_connections_cut: pgConnectionsCut } : {}),
    device_disconnects: report.disconnects,
    device_connect_errors: report.connect_errors,
    server_shutdowns: report.server_shutdowns,
    device_registrations: report.registrations,
    device_hub_errors: report.hub_errors,
    ...(fleetExit !== null ? { fleet_exited: fleetExit } : {}),
    grace_ms: GRACE_MS,
    hub_env: Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'DATABASE_URL')),
    target: `0 lost, 0 stuck, 0 concurrent duplicates, all done <= ${s.limitS} s after ${recoveryName}`,
    met,
  };
  if (!met) {
    for (const [i, hub] of res.hubs.entries()) {
      const which = res.hubs.length === 1 ? 'hub' : i === 0 ? 'hub killed' : 'hub restarted';
      console.error(
        `--- ${name}: ${which} (pid ${hub.pid}), last 2 KB of output ---\n${hub.log.slice(-2000) || '(no output)'}`,
      );
    }
  }
  return { line, met };
}

async function teardown(res: Resources): Promise<void> {
  const quiet = (p: Promise<unknown>): Promise<unknown> =>
    p.catch((e: unknown) => console.error(`teardown: ${e instanceof Error ? e.message : String(e)}`));
  const fleet = res.fleet;
  if (fleet && fleet.exitCode === null && fleet.signalCode === null) {
    const gone = new Promise<void>((done) => fleet.once('exit', () => done()));
    if (fleet.connected) fleet.send({ type: 'stop' });
    await quiet(withTimeout(gone, 3000, 'chaos fleet stop'));
    fleet.kill('SIGKILL');
  }
  if (res.db) await quiet(withTimeout(res.db.end(), 3000, 'database client end'));
  for (const hub of res.hubs) await quiet(hub.stop());
  if (res.proxy) await quiet(withTimeout(res.proxy.close(), 3000, 'proxy close'));
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--scenario');
  const only = i >= 0 ? process.argv[i + 1] : undefined;
  if (only !== undefined && !SCENARIOS[only])
    throw new Error(`unknown scenario "${only}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  // Exit 1 only when the harness itself failed; a missed target is a result, printed as met:false.
  let errored = false;
  for (const [name, s] of Object.entries(SCENARIOS)) {
    if (only && name !== only) continue;
    const res: Resources = { hubs: [] };
    const attempt = run(name, s, res);
    try {
      const { line, met } = await withTimeout(attempt, SCENARIO_TIMEOUT_MS, `scenario ${name}`);
      console.log(JSON.stringify(line));
      if (!met) console.error(`${name}: target missed`);
    } catch (e) {
      errored = true;
      console.log(
        JSON.stringify({
          workload: 'W7-faults',
          scenario: name,
          error: e instanceof Error ? e.message.split('\n')[0] : String(e),
          met: false,
        }),
      );
      console.error(e);
      for (const hub of res.hubs)
        console.error(
          `--- ${name}: hub pid ${hub.pid}, last 2 KB of output ---\n${hub.log.slice(-2000) || '(no output)'}`,
        );
      // The run may still be going after a timeout; it fails on its own once torn down.
      attempt.catch(() => undefined);
    } finally {
      await teardown(res);
    }
  }
  process.exit(errored ? 1 : 0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
