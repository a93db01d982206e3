// W1 (BENCHMARKS.md): task intake. POST /api/v1/tasks with 64 connections (autocannon), and
// the batch endpoint with 1,000 tasks a request, on each hub mode; beside two anchors measured
// once in the same run: graphile-worker's addJob / addJobs on the local PostgreSQL and BullMQ's
// add / addBulk on the local Redis. Rows are counted in the hub's database itself (embedded
// mode: straight from the hub's own server), so every reported number is backed by what the
// database holds. Two lines per mode: W1a (single) and W1b (batch).
//
//   node dist/bench/w1-intake.js [--mode=embedded|postgres|both]     (npm run bench:w1)
//   --mode / BENCH_MODE  embedded: the default `npm start` (no DATABASE_URL; its own PostgreSQL in
//                    a temp DATA_DIR, removed afterwards); postgres: a fresh database on the local
//                    PostgreSQL; both (default): embedded, then postgres
//   BENCH_DURATION   seconds per measured phase (default 10)
//   BENCH_WARMUP     seconds of unmeasured load before each phase (default 2, 0 = none)
//   BENCH_DB_SUFFIX  appended to every bench database name (and BullMQ's key prefix)
//   BENCH_ANCHORS=0  skip both anchors (the tracing-overhead comparison runs the hub alone)
//   BENCH_DATABASE_URL  postgres mode's hub database (dropped and re-created, exact name, which
//                    must contain "bench"); default taskhub_bench_w1 on BENCH_PG_ADMIN_URL's
//                    server (local PostgreSQL). graphile-worker runs on the same server.
//   BENCH_REDIS_URL  BullMQ's Redis (default redis://127.0.0.1:6379); unreachable → "skipped: …"
//   BENCH_W1_PARTS   which phases: "single,batch" (default), "single" or "batch"; graphile-worker's
//                    anchor measures only the matching calls (addJob / addJobs); BullMQ's (which
//                    measures both) runs only when single is selected
// The batch line also gives the hub's CPU (utime + stime from /proc) per task in the measured
// phase, and in embedded mode the CPU of its PostgreSQL server (postmaster and its children).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { makeWorkerUtils } from 'graphile-worker';
import { graphileLogger } from './lib/graphile.js';
import pg from 'pg';
import { bullmqIntake, type BullmqIntake } from './lib/bullmq.js';
import {
  childPids,
  embeddedPostmasterPid,
  freshDatabase,
  type HubMode,
  isSkipped,
  type Measured,
  measureOrSkip,
  PG_ADMIN_URL,
  ratioTo,
  round,
  selectedModes,
  sleep,
  startModeHub,
  type Teardown,
} from './lib/services.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const MODES = selectedModes();
const SINGLE_CONNECTIONS = 64;
const BATCH_CONNECTIONS = 4;
const BATCH_SIZE = 1000;
const PARTS = new Set((process.env.BENCH_W1_PARTS ?? 'single,batch').split(',').map((p) => p.trim()));
const RUN_SINGLE = PARTS.has('single');
const RUN_BATCH = PARTS.has('batch');
const TASK = { prompt: 'bench', priority: 'medium', tags: ['bench'], work_directory: '/bench' };
// Not taskhub_bench_gw: W2/W3 use that one and may run at the same time.
const ANCHOR_DB = 'taskhub_bench_w1_gw';
// Targets: BENCHMARKS.md's text, verbatim.
// BENCHMARKS.md and issue 27, verbatim.
const TARGET_SINGLE = 'single ≥ 2 × graphile-worker addJob in the same run (moonshot 5,000/s)';
const TARGET_BATCH = 'batch ≥ 1.0 × graphile addJobs (moonshot 50,000 tasks/s)';

/** utime + stime of these processes in seconds (Linux /proc); NaN when one cannot be read. */
function cpuSeconds(pids: (number | undefined)[]): number {
  let sum = 0;
  for (const pid of pids) {
    if (!pid) return NaN;
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      sum += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return NaN;
    }
  }
  return sum;
}

/**
 * CPU seconds a PostgreSQL server has used so far: the postmaster with its reaped children
 * (cutime + cstime) plus every live child (backends come and go with the hub's pool).
 */
function serverCpuSeconds(postmaster: number | undefined): number {
  if (!postmaster) return NaN;
  try {
    const fields = readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(') ')[1].split(' ');
    const own = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    return own + childPids(postmaster).reduce((sum, pid) => sum + (cpuSeconds([pid]) || 0), 0);
  } catch {
    return NaN;
  }
}

/** How many rows the `tasks` table holds. */
type RowCounter = () => Promise<number>;

function sqlCounter(url: string): RowCounter {
  return async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM tasks');
      return Number(rows[0].n);
    } finally {
      await c.end();
    }
  };
}

/**
 * autocannon drops the requests in flight at the deadline; the hub may still commit them.
 * Wait until the count stops moving (two equal readings 300 ms apart, at most 15 s).
 */
async function settledCount(count: RowCounter): Promise<number> {
  let last = await count();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    await sleep(300);
    const now = await count();
    if (now === last) return now;
    last = now;
  }
  return last;
}

function statusCodes(r: autocannon.Result): Record<string, number> {
  return Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, { count }]) => [code, count ?? 0]));
}

interface Phase {
  result: autocannon.Result;
  rowsBefore: number;
  rowsAfter: number;
  /** Bodies of the first non-2xx / unexpected answers, for the report. */
  samples: string[];
  /** CPU seconds of the hub and (embedded) its PostgreSQL server during the measured run. */
  hubCpu: number;
  dbCpu: number;
}

async function phase(
  hubUrl: string,
  path: string,
  body: string,
  connections: number,
  count: RowCounter,
  cpu: { hub: () => number; db: () => number },
  verify?: (body: string) => boolean,
): Promise<Phase> {
  const base: autocannon.Options = {
    url: `${hubUrl}${path}`,
    method: 'POST',
    connections,
    headers: { 'content-type': 'application/json' },
    body,
  };
  if (WARMUP > 0) await autocannon({ ...base, duration: WARMUP });
  const rowsBefore = await settledCount(count);
  const samples: string[] = [];
  const hub0 = cpu.hub();
  const db0 = cpu.db();
  const result = await autocannon({
    ...base,
    duration: DURATION,
    verifyBody: (raw) => {
      const text = typeof raw === 'string' ? raw : (raw?.toString() ?? '');
      const ok = verify ? verify(text) : text.includes('"success":true');
      if (!ok && samples.length < 3) samples.push(text.slice(0, 500));
      return ok;
    },
  });
  const hubCpu = cpu.hub() - hub0;
  const dbCpu = cpu.db() - db0;
  const rowsAfter = await settledCount(count);
  return { result, rowsBefore, rowsAfter, samples, hubCpu, dbCpu };
}

interface HubNumbers {
  mode: HubMode;
  database: string;
  single?: Record<string, unknown> & { ok: number; rps: number };
  batch?: Record<string, unknown> & { tasksPerS: number };
  teardown: Teardown;
  log: string;
}

async function hubIntake(mode: HubMode): Promise<HubNumbers> {
  const started = await startModeHub(mode, 'taskhub_bench_w1', { databaseUrl: process.env.BENCH_DATABASE_URL });
  const { hub } = started;
  let teardown: Teardown | undefined;
  try {
    const count = sqlCounter(started.databaseUrl);
    const postmaster = started.dataDir ? embeddedPostmasterPid(started.dataDir) : undefined;
    const cpu = { hub: () => cpuSeconds([hub.pid]), db: () => serverCpuSeconds(postmaster) };

    let singleNumbers: HubNumbers['single'];
    if (RUN_SINGLE) {
      const single = await phase(hub.url, '/api/v1/tasks', JSON.stringify(TASK), SINGLE_CONNECTIONS, count, cpu);
      const s = single.result;
      const sOk = s['2xx'] - s.mismatches;
      const sRows = single.rowsAfter - single.rowsBefore;
      singleNumbers = {
        ok: sOk,
        rps: sOk / s.duration,
        autocannon_req_per_s_avg: s.requests.average,
        p50: s.latency.p50,
        p99: s.latency.p99,
        max: s.latency.max,
        seconds: s.duration,
        non2xx: s.non2xx,
        errors: s.errors,
        timeouts: s.timeouts,
        mismatches: s.mismatches,
        status_codes: statusCodes(s),
        rows: sRows,
        // Every acknowledged task is a row; at most one request per connection was cut off
        // at the deadline and may have committed without an answer.
        rows_match: sRows >= sOk && sRows <= sOk + SINGLE_CONNECTIONS + s.errors + s.timeouts,
        hub_cpu_us_per_request: round((single.hubCpu * 1e6) / (sOk || 1), 1),
        samples: single.samples,
      };
    }

    let batchNumbers: HubNumbers['batch'];
    if (RUN_BATCH) {
      let createdSum = 0;
      const batch = await phase(
        hub.url,
        '/api/v1/tasks/batch',
        JSON.stringify({ tasks: Array.from({ length: BATCH_SIZE }, () => TASK) }),
        BATCH_CONNECTIONS,
        count,
        cpu,
        (text) => {
          try {
            const body = JSON.parse(text) as { success?: boolean; data?: { created?: number } };
            if (body.success && typeof body.data?.created === 'number') createdSum += body.data.created;
            return body.success === true && body.data?.created === BATCH_SIZE;
          } catch {
            return false;
          }
        },
      );
      const b = batch.result;
      const bRows = batch.rowsAfter - batch.rowsBefore;
      batchNumbers = {
        tasksPerS: createdSum / b.duration,
        requests_ok: b['2xx'] - b.mismatches,
        req_per_s: (b['2xx'] - b.mismatches) / b.duration,
        p50: b.latency.p50,
        p99: b.latency.p99,
        max: b.latency.max,
        seconds: b.duration,
        non2xx: b.non2xx,
        errors: b.errors,
        timeouts: b.timeouts,
        mismatches: b.mismatches,
        status_codes: statusCodes(b),
        acknowledged_tasks: createdSum,
        rows: bRows,
        rows_match:
          bRows >= createdSum && bRows <= createdSum + BATCH_SIZE * (BATCH_CONNECTIONS + b.errors + b.timeouts),
        hub_cpu_s: round(batch.hubCpu, 2),
        hub_cpu_us_per_task: round((batch.hubCpu * 1e6) / (createdSum || 1), 1),
        hub_cpu_pct: round((batch.hubCpu / b.duration) * 100, 1),
        db_cpu_us_per_task: Number.isNaN(batch.dbCpu) ? null : round((batch.dbCpu * 1e6) / (createdSum || 1), 1),
        samples: batch.samples,
      };
    }
    teardown = await started.close();
    return { mode, database: started.database, single: singleNumbers, batch: batchNumbers, teardown, log: hub.log };
  } finally {
    if (!teardown) await started.close();
  }
}

interface GraphileIntake {
  single16: number;
  single64: number;
  batch: number;
  /** Jobs in graphile-worker's table equal the jobs counted as added. */
  rowsMatch: boolean;
}

/** addJob with 16 and 64 callers in flight for DURATION seconds each; addJobs of 1,000 with 4. */
async function graphileIntake(): Promise<GraphileIntake> {
  let serverUrl = PG_ADMIN_URL;
  if (process.env.BENCH_DATABASE_URL) {
    const u = new URL(process.env.BENCH_DATABASE_URL);
    u.pathname = '/postgres';
    serverUrl = u.toString();
  }
  const connectionString = await freshDatabase(ANCHOR_DB, serverUrl);
  const utils = await makeWorkerUtils({ connectionString, logger: graphileLogger });
  try {
    await utils.migrate();
    let added = 0;
    const rate = async (
      seconds: number,
      concurrency: number,
      add: () => Promise<unknown>,
      per: number,
    ): Promise<number> => {
      const t0 = performance.now();
      const until = t0 + seconds * 1000;
      let done = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < until) {
            await add();
            done += per;
          }
        }),
      );
      added += done;
      return done / ((performance.now() - t0) / 1000);
    };
    const payload = { prompt: 'bench', tags: ['bench'] };
    const single = (): Promise<unknown> => utils.addJob('noop', payload);
    if (WARMUP > 0) await rate(WARMUP, 16, single, 1);
    const single16 = RUN_SINGLE ? await rate(DURATION, 16, single, 1) : NaN;
    const single64 = RUN_SINGLE ? await rate(DURATION, 64, single, 1) : NaN;
    const specs = Array.from({ length: BATCH_SIZE }, () => ({ identifier: 'noop', payload }));
    const batch = RUN_BATCH ? await rate(DURATION, BATCH_CONNECTIONS, () => utils.addJobs(specs), BATCH_SIZE) : NaN;
    const rows = await utils.withPgClient((c) =>
      c.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker._private_jobs'),
    );
    return { single16, single64, batch, rowsMatch: Number(rows.rows[0].n) === added };
  } finally {
    await utils.release();
  }
}

interface Anchors {
  graphile: Measured<GraphileIntake>;
  bullmq: Measured<BullmqIntake>;
}

function singleLine(
  ours: HubNumbers & { single: NonNullable<HubNumbers['single']> },
  a: Anchors,
  load: number[],
): Record<string, unknown> {
  const rps = ours.single.rps;
  const vsGraphile = ratioTo(rps, a.graphile, (g) => g.single16);
  return {
    workload: 'W1a-single-submit',
    mode: ours.mode,
    database: ours.database,
    connections: SINGLE_CONNECTIONS,
    seconds: ours.single.seconds,
    hub_rps: round(rps, 0),
    autocannon_req_per_s_avg: ours.single.autocannon_req_per_s_avg,
    p50_ms: ours.single.p50,
    p99_ms: ours.single.p99,
    max_ms: ours.single.max,
    hub_cpu_us_per_request: ours.single.hub_cpu_us_per_request,
    non2xx: ours.single.non2xx,
    errors: ours.single.errors,
    timeouts: ours.single.timeouts,
    unexpected_bodies: ours.single.mismatches,
    status_codes: ours.single.status_codes,
    acknowledged: ours.single.ok,
    rows: ours.single.rows,
    rows_match_acks: ours.single.rows_match,
    graphile: isSkipped(a.graphile)
      ? a.graphile
      : {
          anchor: 'graphile-worker 0.17.3 addJob',
          jobs_per_s_16_in_flight: round(a.graphile.single16, 0),
          jobs_per_s_64_in_flight: round(a.graphile.single64, 0),
          rows_match: a.graphile.rowsMatch,
        },
    bullmq: isSkipped(a.bullmq)
      ? a.bullmq
      : {
          anchor: 'BullMQ 6.7.0 Queue.add',
          producers: a.bullmq.producers,
          jobs_per_s: round(a.bullmq.add_jobs_per_s, 0),
          jobs_match: a.bullmq.jobs_match,
        },
    // BENCHMARKS.md's graphile enqueue anchor is 16 in flight; 64 (the hub's connections) beside it.
    ratio_vs_graphile: vsGraphile,
    ratio_vs_graphile_64_in_flight: ratioTo(rps, a.graphile, (g) => g.single64),
    ratio_vs_bullmq: ratioTo(rps, a.bullmq, (b) => b.add_jobs_per_s),
    target: TARGET_SINGLE,
    target_met: typeof vsGraphile === 'number' ? vsGraphile >= 2 : null,
    ...ours.teardown,
    load_avg: load,
  };
}

function batchLine(
  ours: HubNumbers & { batch: NonNullable<HubNumbers['batch']> },
  a: Anchors,
  load: number[],
): Record<string, unknown> {
  const tps = ours.batch.tasksPerS;
  return {
    workload: 'W1b-batch-submit',
    mode: ours.mode,
    database: ours.database,
    connections: BATCH_CONNECTIONS,
    tasks_per_request: BATCH_SIZE,
    seconds: ours.batch.seconds,
    hub_tasks_per_s: round(tps, 0),
    req_per_s: round(Number(ours.batch.req_per_s), 1),
    p50_ms: ours.batch.p50,
    p99_ms: ours.batch.p99,
    max_ms: ours.batch.max,
    non2xx: ours.batch.non2xx,
    errors: ours.batch.errors,
    timeouts: ours.batch.timeouts,
    responses_not_created_1000: ours.batch.mismatches,
    status_codes: ours.batch.status_codes,
    acknowledged_tasks: ours.batch.acknowledged_tasks,
    rows: ours.batch.rows,
    rows_match_acks: ours.batch.rows_match,
    hub_cpu_s: ours.batch.hub_cpu_s,
    hub_cpu_us_per_task: ours.batch.hub_cpu_us_per_task,
    hub_cpu_pct: ours.batch.hub_cpu_pct,
    db_cpu_us_per_task: ours.batch.db_cpu_us_per_task,
    graphile: isSkipped(a.graphile)
      ? a.graphile
      : {
          anchor: `graphile-worker 0.17.3 addJobs (1,000 a call, ${BATCH_CONNECTIONS} in flight)`,
          jobs_per_s: round(a.graphile.batch, 0),
          rows_match: a.graphile.rowsMatch,
        },
    bullmq: isSkipped(a.bullmq)
      ? a.bullmq
      : {
          anchor: `BullMQ 6.7.0 Queue.addBulk (${a.bullmq.bulk_size} a call, ${a.bullmq.bulk_in_flight} in flight)`,
          jobs_per_s: round(a.bullmq.add_bulk_jobs_per_s, 0),
          jobs_match: a.bullmq.jobs_match,
        },
    ratio_vs_graphile: ratioTo(tps, a.graphile, (g) => g.batch),
    ratio_vs_bullmq: ratioTo(tps, a.bullmq, (b) => b.add_bulk_jobs_per_s),
    target: TARGET_BATCH,
    target_met: isSkipped(a.graphile) ? null : tps >= a.graphile.batch,
    moonshot_met: tps >= 50_000,
    ...ours.teardown,
    load_avg: load,
  };
}

/** The first unexpected answers and the hub's last words, when a phase had errors or rows went missing. */
function reportTrouble(ours: HubNumbers): void {
  const phases: [string, Record<string, unknown>][] = [];
  if (ours.single) phases.push(['W1a', ours.single]);
  if (ours.batch) phases.push(['W1b', ours.batch]);
  const trouble = phases.some(
    ([, p]) => Number(p.non2xx) + Number(p.errors) + Number(p.mismatches) > 0 || !p.rows_match,
  );
  if (!trouble) return;
  for (const [name, p] of phases) {
    for (const body of p.samples as string[]) console.error(`${name} ${ours.mode} unexpected answer: ${body}`);
  }
  const tail = ours.log.split('\n').slice(-40).join('\n');
  if (tail.trim()) console.error(`hub output (${ours.mode}, last 40 lines):\n${tail}`);
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => round(l));
  // The hub's modes first, then the anchors once, shared by both lines: a stopped hub leaves
  // nothing running, while the anchors' churn leaves the local server vacuuming (W3 measured the
  // hub ~1.5 ms slower after them).
  const measured: HubNumbers[] = [];
  for (const mode of MODES) measured.push(await hubIntake(mode));
  const skip = process.env.BENCH_ANCHORS === '0';
  const anchors: Anchors = {
    graphile: skip ? 'skipped: BENCH_ANCHORS=0' : await measureOrSkip('graphile-worker', graphileIntake),
    bullmq: skip
      ? 'skipped: BENCH_ANCHORS=0'
      : RUN_SINGLE
        ? await measureOrSkip('BullMQ', () => bullmqIntake(DURATION, WARMUP, SINGLE_CONNECTIONS))
        : 'skipped: BENCH_W1_PARTS has no single',
  };
  for (const ours of measured) {
    const { single, batch } = ours;
    if (single) console.log(JSON.stringify(singleLine({ ...ours, single }, anchors, load)));
    if (batch) console.log(JSON.stringify(batchLine({ ...ours, batch }, anchors, load)));
    reportTrouble(ours);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
