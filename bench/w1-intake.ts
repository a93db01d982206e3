// W1 (BENCHMARKS.md): task intake. POST /api/v1/tasks with 64 connections (autocannon), and
// the batch endpoint with 1,000 tasks a request; beside graphile-worker's addJob / addJobs
// rates measured on the same PostgreSQL in the same run. Rows are counted afterwards, so
// every reported number is backed by what the database holds.
//
//   node dist/bench/w1-intake.js [--embedded]
//   BENCH_DURATION   seconds per measured phase (default 10)
//   BENCH_WARMUP     seconds of unmeasured load before each hub phase (default 2, 0 = none)
//   BENCH_DATABASE_URL  hub database (dropped and re-created; its name must contain "bench");
//                    default taskhub_bench_w1 on BENCH_PG_ADMIN_URL's server (local PostgreSQL)
//   --embedded       the hub on its embedded PGlite (temp DATA_DIR) instead; the anchor still
//                    runs on PostgreSQL, and is skipped with a reason if none is reachable
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { makeWorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { freshDatabase, Hub, PG_ADMIN_URL, round, sleep } from './lib/services.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const EMBEDDED = process.argv.includes('--embedded');
const SINGLE_CONNECTIONS = 64;
const BATCH_CONNECTIONS = 4;
const BATCH_SIZE = 1000;
const TASK = { prompt: 'bench', priority: 'medium', tags: ['bench'], work_directory: '/bench' };
// Not taskhub_bench_gw: W2/W3 use that one and may run at the same time.
const ANCHOR_DB = 'taskhub_bench_w1_gw';

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

/** Embedded mode: the PGlite port is the hub's own, so count through the API (an exact count(*)). */
function apiCounter(hubUrl: string): RowCounter {
  return async () => {
    const res = await fetch(`${hubUrl}/api/v1/tasks?limit=1`);
    if (!res.ok) throw new Error(`GET /api/v1/tasks: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { data: { pagination: { total: number } } };
    return body.data.pagination.total;
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
}

async function phase(hubUrl: string, path: string, body: string, connections: number, count: RowCounter, verify?: (body: string) => boolean): Promise<Phase> {
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
  const rowsAfter = await settledCount(count);
  return { result, rowsBefore, rowsAfter, samples };
}

interface HubNumbers {
  mode: string;
  single: Record<string, unknown> & { ok: number; rps: number };
  batch: Record<string, unknown> & { tasksPerS: number };
  log: string;
}

async function hubIntake(): Promise<HubNumbers> {
  let dataDir: string | undefined;
  let env: Record<string, string>;
  let dbUrl: string | undefined;
  if (EMBEDDED) {
    const dir = mkdtempSync(join(tmpdir(), 'taskhub-bench-w1-'));
    dataDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true })); // also on Ctrl-C
    env = { DATABASE_URL: '', DATA_DIR: dataDir };
  } else {
    const override = process.env.BENCH_DATABASE_URL;
    if (override) {
      const name = decodeURIComponent(new URL(override).pathname.slice(1));
      const admin = new URL(override);
      admin.pathname = '/postgres';
      await freshDatabase(name, admin.toString());
      dbUrl = override; // the caller's exact URL, query options and all
    } else {
      dbUrl = await freshDatabase('taskhub_bench_w1');
    }
    env = { DATABASE_URL: dbUrl };
  }
  const hub = new Hub(env);
  try {
    await hub.start();
    const count = dbUrl ? sqlCounter(dbUrl) : apiCounter(hub.url);

    const single = await phase(hub.url, '/api/v1/tasks', JSON.stringify(TASK), SINGLE_CONNECTIONS, count);
    const s = single.result;
    const sOk = s['2xx'] - s.mismatches;
    const sRows = single.rowsAfter - single.rowsBefore;

    let createdSum = 0;
    const batch = await phase(
      hub.url,
      '/api/v1/tasks/batch',
      JSON.stringify({ tasks: Array.from({ length: BATCH_SIZE }, () => TASK) }),
      BATCH_CONNECTIONS,
      count,
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

    return {
      mode: EMBEDDED ? 'embedded PGlite' : 'PostgreSQL',
      single: {
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
        samples: single.samples,
      },
      batch: {
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
        rows_match: bRows >= createdSum && bRows <= createdSum + BATCH_SIZE * (BATCH_CONNECTIONS + b.errors + b.timeouts),
        samples: batch.samples,
      },
      log: hub.log,
    };
  } finally {
    await hub.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

interface AnchorNumbers {
  single16: number;
  single64: number;
  batch: number;
  /** Jobs in graphile-worker's table equal the jobs counted as added. */
  rowsMatch: boolean;
}

/** addJob with 16 and 64 callers in flight for DURATION seconds each; addJobs of 1,000 with 4. */
async function graphileIntake(): Promise<AnchorNumbers> {
  let serverUrl = PG_ADMIN_URL;
  if (process.env.BENCH_DATABASE_URL && !EMBEDDED) {
    const u = new URL(process.env.BENCH_DATABASE_URL);
    u.pathname = '/postgres';
    serverUrl = u.toString();
  }
  const connectionString = await freshDatabase(ANCHOR_DB, serverUrl);
  const utils = await makeWorkerUtils({ connectionString });
  try {
    await utils.migrate();
    let added = 0;
    const rate = async (seconds: number, concurrency: number, add: () => Promise<unknown>, per: number): Promise<number> => {
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
    const single16 = await rate(DURATION, 16, single, 1);
    const single64 = await rate(DURATION, 64, single, 1);
    const specs = Array.from({ length: BATCH_SIZE }, () => ({ identifier: 'noop', payload }));
    const batch = await rate(DURATION, BATCH_CONNECTIONS, () => utils.addJobs(specs), BATCH_SIZE);
    const rows = await utils.withPgClient((c) => c.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker._private_jobs'));
    return { single16, single64, batch, rowsMatch: Number(rows.rows[0].n) === added };
  } finally {
    await utils.release();
  }
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => round(l));
  let anchor: AnchorNumbers | undefined;
  let anchorSkipped: string | undefined;
  try {
    anchor = await graphileIntake();
  } catch (e) {
    if (!EMBEDDED) throw e;
    anchorSkipped = `graphile-worker needs PostgreSQL: ${(e as Error).message}`;
  }
  const ours = await hubIntake();
  const suffix = EMBEDDED ? '-embedded' : '';
  const trouble = [ours.single, ours.batch].some((p) => Number(p.non2xx) + Number(p.errors) + Number(p.mismatches) > 0 || !p.rows_match);

  console.log(
    JSON.stringify({
      workload: `W1a-single-submit${suffix}`,
      database: ours.mode,
      connections: SINGLE_CONNECTIONS,
      seconds: ours.single.seconds,
      hub_rps: round(ours.single.rps, 0),
      autocannon_req_per_s_avg: ours.single.autocannon_req_per_s_avg,
      p50_ms: ours.single.p50,
      p99_ms: ours.single.p99,
      max_ms: ours.single.max,
      non2xx: ours.single.non2xx,
      errors: ours.single.errors,
      timeouts: ours.single.timeouts,
      unexpected_bodies: ours.single.mismatches,
      status_codes: ours.single.status_codes,
      acknowledged: ours.single.ok,
      rows: ours.single.rows,
      rows_match_acks: ours.single.rows_match,
      anchor: 'graphile-worker 0.17.3 addJob (16 in flight)',
      anchor_rps: anchor ? round(anchor.single16, 0) : null,
      anchor_rps_64_in_flight: anchor ? round(anchor.single64, 0) : null,
      anchor_rows_match: anchor?.rowsMatch ?? null,
      ratio: anchor ? round(ours.single.rps / anchor.single16) : null,
      ratio_vs_64_in_flight: anchor ? round(ours.single.rps / anchor.single64) : null,
      ...(anchorSkipped ? { anchor_skipped: anchorSkipped } : {}),
      target: 5000,
      load_avg: load,
    }),
  );
  console.log(
    JSON.stringify({
      workload: `W1b-batch-submit${suffix}`,
      database: ours.mode,
      connections: BATCH_CONNECTIONS,
      tasks_per_request: BATCH_SIZE,
      seconds: ours.batch.seconds,
      hub_tasks_per_s: round(ours.batch.tasksPerS, 0),
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
      anchor: 'graphile-worker 0.17.3 addJobs (1,000 a call, 4 in flight)',
      anchor_jobs_per_s: anchor ? round(anchor.batch, 0) : null,
      anchor_rows_match: anchor?.rowsMatch ?? null,
      ratio: anchor ? round(ours.batch.tasksPerS / anchor.batch) : null,
      ...(anchorSkipped ? { anchor_skipped: anchorSkipped } : {}),
      target: 50000,
    }),
  );
  if (trouble) {
    for (const [name, p] of [['W1a', ours.single], ['W1b', ours.batch]] as const) {
      for (const body of p.samples as string[]) console.error(`${name} unexpected answer: ${body}`);
    }
    const tail = ours.log.split('\n').slice(-40).join('\n');
    if (tail.trim()) console.error(`hub output (last 40 lines):\n${tail}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
