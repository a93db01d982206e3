// W10 (BENCHMARKS.md; issue 25, "Proof and numbers"): summaries at scale. Two databases in one
// run, each migrated by the hub itself: one empty, one loaded by SQL with N finished tasks (default
// 10,000,000) and their task_events. Against each, with a hub running: every list, the
// statistics, /metrics, /status, /health, /healthz, the dashboard's get_status (/events), the
// Codex stream's get_status (/ws), metrics_update's assembly, and W3 pickup. Target: every call
// ≤ 50 ms p99 on the loaded database and ≤ 2 × the empty database's p99; pickup unchanged.
//
//   node dist/bench/w10-summaries.js [--tasks=N] [--mode=postgres|embedded] [--keep] [--reuse]
//                                                                     (npm run bench:w10)
//   --tasks=N        finished tasks in the loaded database (default 10000000)
//   --mode           postgres (default; also "local"): databases taskhub_bench_w10_empty and
//                    taskhub_bench_w10_loaded (+ BENCH_DB_SUFFIX) on the local PostgreSQL
//                    (BENCH_PG_ADMIN_URL); embedded: the default `npm start` (no DATABASE_URL),
//                    each database in its own DATA_DIR (the loaded one in
//                    $TMPDIR/taskhub_bench_w10_loaded<suffix>, or BENCH_W10_DATA_DIR)
//   --events-per-task=4|2  4 (default): created, dispatched, started and the terminal event;
//                    2: created and the terminal event
//   --keep           keep the loaded database afterwards (default: dropped / removed)
//   --reuse          skip the load when the kept loaded database holds the same load (its
//                    marker: tasks, events per task, load version); implies --keep
//   --resume         the kept loaded database of a load that stopped part way: adds the tasks it
//                    lacks (ON CONFLICT DO NOTHING), loads its events again, then measures
//   --samples=50     measured calls per call and database, after --warmup=5 unmeasured ones
//   --budget-s=60    per call and database: stop sampling after this many seconds (at least 3
//                    samples are taken; the table shows how many were)
//   --timeout-s=120  one call's time limit (a call that takes longer counts as an error)
//   --pickup-samples=500  W3 pickups per database (after 20 unmeasured)
//   BENCH_DB_SUFFIX  appended to every bench database name and the embedded DATA_DIR
//
// The JSON and a markdown table go to artifacts/w10-summaries-<commit>-<N>.{json,md}; the table
// is also printed, then one JSON summary line.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { measurePickup } from './lib/pickup.js';
import {
  DB_SUFFIX,
  embeddedDatabaseUrl,
  embeddedPostmasterPid,
  freshDatabase,
  Hub,
  isAlive,
  PG_ADMIN_URL,
  percentile,
  removeDataDir,
  round,
  serverVersion,
  sleep,
} from './lib/services.js';

// ------------------------------------------------------------ options

const argValue = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const flag = (name: string): boolean => process.argv.includes(`--${name}`);
function intArg(name: string, fallback: number, min = 0): number {
  const raw = argValue(name);
  const n = raw === undefined ? fallback : Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got "${raw}"`);
  return n;
}

type Mode = 'postgres' | 'embedded';
function selectedMode(): Mode {
  const arg = argValue('mode') ?? process.env.BENCH_MODE ?? 'postgres';
  if (arg === 'postgres' || arg === 'local') return 'postgres';
  if (arg === 'embedded') return 'embedded';
  throw new Error(`--mode / BENCH_MODE: expected postgres (or local) or embedded, got "${arg}" (W10 runs one mode)`);
}

const TASKS = intArg('tasks', 10_000_000);
const MODE = selectedMode();
const EVENTS_PER_TASK = intArg('events-per-task', 4, 2);
if (EVENTS_PER_TASK !== 2 && EVENTS_PER_TASK !== 4) throw new Error('--events-per-task: 2 or 4');
const REUSE = flag('reuse');
/** A kept database whose load stopped part way: the tasks it lacks are added, its events loaded again. */
const RESUME = flag('resume');
const KEEP = flag('keep') || REUSE || RESUME;
const SAMPLES = intArg('samples', 50, 1);
const WARMUP = intArg('warmup', 5);
const BUDGET_MS = intArg('budget-s', 60, 1) * 1000;
const CALL_TIMEOUT_MS = intArg('timeout-s', 120, 1) * 1000;
const MIN_SAMPLES = Math.min(3, SAMPLES);
const PICKUP_SAMPLES = intArg('pickup-samples', 500, 1);
const PICKUP_WARMUP = 20;

const TARGET_P99_MS = 50;
const TARGET_RATIO = 2;
const TARGET = `p99 ≤ ${TARGET_P99_MS} ms and ≤ ${TARGET_RATIO} × empty`;
const PICKUP_TARGET = 'unchanged: p50 ≤ 1.25 × empty + 1 ms, p99 ≤ 2 × empty';

/** Loads rows are made the same way for a given version; a kept database with another version is re-loaded. */
const LOAD_VERSION = 1;
const TASK_CHUNK = 1_000_000; // rows per INSERT statement
const EVENT_CHUNK_TASKS = Math.floor(1_000_000 / EVENTS_PER_TASK); // ~1 M event rows per statement
/** Created_at spread: 30 days, ending an hour ago (timed-out tasks finish 5 minutes after their start). */
const SPAN_SECONDS = 30 * 86_400;
const TENANTS = ['bench-t1', 'bench-t2', 'bench-t3']; // besides 'default'

const METRICS_TOKEN = 'w10-bench-metrics-token-0123456789';
// Retention off: W10 measures reads with the whole history in place (the hub runs during the
// load; with the default 7 days its cleaner removed 228,000 of the 10 M tasks the first time).
// What retention itself costs is W2-retention's to measure.
const HUB_ENV = { METRICS_TOKEN, RETENTION_INTERVAL_MS: '0' };
/** Migrations that rewrite a 10 M row table (e.g. a counter backfill) may take a while. */
const HUB_START_TIMEOUT_MS = 60 * 60_000;

// ------------------------------------------------------------ databases

interface LoadMarker {
  workload: 'W10';
  version: number;
  tasks: number;
  events_per_task: number;
  loaded_at: string;
  load_seconds: number;
}

/** One of the two databases, in either mode; the hub on it is started and stopped per phase. */
class BenchDb {
  hub?: Hub;
  /** Postgres mode: always valid; embedded: valid while the hub (and so its server) runs. */
  url = '';
  private readonly dataDir?: string;

  constructor(
    readonly role: 'empty' | 'loaded',
    private readonly name: string,
  ) {
    if (MODE === 'embedded') {
      this.dataDir =
        role === 'loaded'
          ? (process.env.BENCH_W10_DATA_DIR ?? join(tmpdir(), `${name}${DB_SUFFIX}`))
          : join(tmpdir(), `${name}${DB_SUFFIX}-${process.pid}`);
    } else {
      const u = new URL(PG_ADMIN_URL);
      u.pathname = `/${name}${DB_SUFFIX}`;
      this.url = u.toString();
    }
  }

  get where(): string {
    return this.dataDir ?? `${this.name}${DB_SUFFIX}`;
  }

  async exists(): Promise<boolean> {
    if (this.dataDir) return existsSync(join(this.dataDir, 'pg', 'PG_VERSION'));
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        `${this.name}${DB_SUFFIX}`,
      ]);
      return rowCount === 1;
    } finally {
      await admin.end();
    }
  }

  /** Dropped and created again (postgres), or an empty DATA_DIR (embedded). */
  async create(): Promise<void> {
    if (this.dataDir) {
      const dir = this.dataDir;
      removeDataDir(dir);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755); // as root the embedded server runs as user postgres
      if (this.role === 'empty' || !KEEP) process.once('exit', () => removeDataDir(dir)); // also on Ctrl-C
    } else {
      this.url = await freshDatabase(this.name);
    }
  }

  /** Starts a hub on this database; ms until /healthz answered. */
  async start(): Promise<number> {
    const env = this.dataDir
      ? { DATABASE_URL: '', DATA_DIR: this.dataDir, ...HUB_ENV }
      : { DATABASE_URL: this.url, ...HUB_ENV };
    const t0 = performance.now();
    this.hub = await new Hub(env, { startTimeoutMs: HUB_START_TIMEOUT_MS }).start();
    const ms = performance.now() - t0;
    if (this.dataDir) this.url = embeddedDatabaseUrl(this.dataDir);
    return ms;
  }

  /** Stops the hub; embedded: waits until its server is gone (DATA_DIR stays). */
  async stop(): Promise<void> {
    const postmaster = this.dataDir ? embeddedPostmasterPid(this.dataDir) : undefined;
    await this.hub?.stop();
    this.hub = undefined;
    const deadline = Date.now() + 30_000;
    while (postmaster !== undefined && isAlive(postmaster) && Date.now() < deadline) await sleep(50);
  }

  async remove(): Promise<void> {
    await this.stop();
    if (this.dataDir) {
      removeDataDir(this.dataDir);
      return;
    }
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name}${DB_SUFFIX} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }

  /** A client on this database acting for every tenant (row-level security: '*'). */
  async client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    await c.query(`SELECT set_config('taskhub.tenant_id', '*', false)`);
    return c;
  }

  async marker(): Promise<LoadMarker | undefined> {
    const c = await this.client();
    try {
      const { rows } = await c.query<{ d: string | null }>(
        `SELECT shobj_description(oid, 'pg_database') AS d FROM pg_database WHERE datname = current_database()`,
      );
      const parsed = rows[0]?.d ? (JSON.parse(rows[0].d) as Partial<LoadMarker>) : undefined;
      return parsed?.workload === 'W10' ? (parsed as LoadMarker) : undefined;
    } catch {
      return undefined;
    } finally {
      await c.end();
    }
  }
}

// ------------------------------------------------------------ the load

/**
 * Task i (0 ≤ i < N), everything derived from i so the tasks and the events statements agree:
 * id md5('w10:i'); tenant default 55 %, bench-t1 25 %, bench-t2 15 %, bench-t3 5 %; status
 * completed 85 %, failed 8 %, cancelled 4 %, timed_out 3 %; 6 types; priority mostly medium;
 * tags and required_tags from a few sets; one of 40 nodes; created_at spread evenly over 30 days
 * ending an hour before the load, dispatched 5–205 ms later, started 1–20 ms after that, finished
 * 50 ms–2 min after the start (timed out: 5 min). $1 first i, $2 last i, $3 start of the span, $4 N.
 */
const TASK_SOURCE = `
  SELECT i, md5('w10:' || i)::uuid AS id, tenant, status, type, priority, tags, required_tags, node, c, d, s,
         CASE WHEN status = 'timed_out' THEN s + interval '300 seconds'
              ELSE s + (50 + abs(hashint8extended(i, 7) % 120000)) * interval '1 millisecond' END AS f
  FROM (
    SELECT i, tenant, status, type, priority, tags, required_tags, node, c,
           c + (5 + i % 200) * interval '1 millisecond' AS d,
           c + (6 + i % 200 + i % 20) * interval '1 millisecond' AS s
    FROM (
      SELECT i,
        CASE WHEN ht < 55 THEN 'default' WHEN ht < 80 THEN 'bench-t1' WHEN ht < 95 THEN 'bench-t2' ELSE 'bench-t3' END AS tenant,
        CASE WHEN hs < 85 THEN 'completed' WHEN hs < 93 THEN 'failed' WHEN hs < 97 THEN 'cancelled' ELSE 'timed_out' END AS status,
        (ARRAY['prompt','shell','build','test','llm','index'])[1 + abs(hashint8extended(i, 3) % 6)] AS type,
        (ARRAY[1,1,1,1,0,0,2,2,3,1])[1 + abs(hashint8extended(i, 4) % 10)]::smallint AS priority,
        CASE abs(hashint8extended(i, 5) % 8) WHEN 2 THEN '{gpu}'::text[] WHEN 3 THEN '{linux}' WHEN 4 THEN '{linux,x64}'
             WHEN 5 THEN '{mac}' WHEN 6 THEN '{gpu,linux}' ELSE '{}' END AS tags,
        CASE abs(hashint8extended(i, 6) % 5) WHEN 3 THEN '{gpu}'::text[] WHEN 4 THEN '{linux}' ELSE '{}' END AS required_tags,
        'bench-node-' || abs(hashint8extended(i, 8) % 40) AS node,
        $3::timestamptz + (i * ${SPAN_SECONDS}::float8 / $4::float8) * interval '1 second' AS c
      FROM (
        SELECT i, abs(hashint8extended(i, 1) % 100) AS ht, abs(hashint8extended(i, 2) % 100) AS hs
        FROM generate_series($1::bigint, $2::bigint) AS i
      ) h
    ) a
  ) b`;

/** Through the table itself: its triggers (tag_key, and whatever counters exist) run for every row. */
const INSERT_TASKS = `
  INSERT INTO tasks (id, type, prompt, data, priority, tags, required_tags, status, node_id, attempt, retry_count,
                     max_retries, timeout_seconds, run_at, result, error, created_at, updated_at, dispatched_at,
                     started_at, completed_at, cancelled_at, cancel_reason, delivery_count, delivered_at, tenant_id)
  SELECT id, type, 'w10 task ' || i, jsonb_build_object('n', i), priority, tags, required_tags, status, node, 1, 0,
         0, CASE WHEN status = 'timed_out' THEN 300 ELSE 1800 END, c,
         CASE WHEN status = 'completed' THEN '{"ok": true}'::jsonb END,
         CASE status
           WHEN 'failed' THEN jsonb_build_object('code', 'TASK_FAILED', 'message', 'bench failure', 'holder', node, 'attempt', 1)
           WHEN 'timed_out' THEN jsonb_build_object('code', 'LEASE_EXPIRED', 'message',
             'The holder did not finish or renew its lease in time', 'node_id', node, 'attempt', 1)
         END,
         c, f, d, s,
         CASE WHEN status = 'cancelled' THEN NULL ELSE f END,
         CASE WHEN status = 'cancelled' THEN f END,
         CASE WHEN status = 'cancelled' THEN 'bench' END,
         1, d, tenant
  FROM (${TASK_SOURCE}) t`;

/** $5: events per task (4: all four; 2: created and the terminal one). */
const INSERT_EVENTS = `
  INSERT INTO task_events (task_id, at, type, level, message, attempt, data, tenant_id)
  SELECT t.id, e.at, e.type, e.level, e.message, e.attempt, e.data, t.tenant
  FROM (${TASK_SOURCE}) t
  CROSS JOIN LATERAL (VALUES
    (1, t.c, 'created', 'info', 'Task created', 0, NULL::jsonb),
    (2, t.d, 'dispatched', 'info', 'Dispatched to node ' || t.node, 1, jsonb_build_object('node_id', t.node)),
    (3, t.s, 'started', 'info', 'Acknowledged by node ' || t.node, 1, jsonb_build_object('node_id', t.node)),
    (4, t.f,
     CASE t.status WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'attempt_failed'
                   WHEN 'cancelled' THEN 'cancelled' ELSE 'lease_expired' END,
     CASE t.status WHEN 'completed' THEN 'info' WHEN 'failed' THEN 'error' WHEN 'cancelled' THEN 'info' ELSE 'warn' END,
     CASE t.status WHEN 'completed' THEN 'Task completed' WHEN 'failed' THEN 'Attempt failed: bench failure'
                   WHEN 'cancelled' THEN 'Cancelled: bench' ELSE 'Lease expired; no retries left' END,
     1,
     CASE t.status WHEN 'completed' THEN jsonb_build_object('duration', round(extract(epoch FROM t.f - t.s) * 1000))
                   WHEN 'failed' THEN '{"retryable": false}'::jsonb
                   WHEN 'timed_out' THEN '{"status": "timed_out"}'::jsonb END)
  ) AS e(k, at, type, level, message, attempt, data)
  WHERE $5::int = 4 OR e.k IN (1, 4)`;

interface LoadReport {
  tasks: number;
  events: number;
  events_per_task: number;
  tasks_seconds: number;
  events_seconds: number;
  vacuum_analyze_seconds: number;
  total_seconds: number;
  tasks_bytes: number;
  task_events_bytes: number;
  database_bytes: number;
}

const secondsSince = (t0: number): number => round((performance.now() - t0) / 1000, 1);

async function chunked(
  c: pg.Client,
  what: string,
  sql: string,
  n: number,
  chunk: number,
  params: (lo: number, hi: number) => unknown[],
): Promise<number> {
  let rows = 0;
  const t0 = performance.now();
  for (let lo = 0; lo < n; lo += chunk) {
    const hi = Math.min(n, lo + chunk) - 1;
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = off');
    const r = await c.query(sql, params(lo, hi));
    await c.query('COMMIT');
    rows += r.rowCount ?? 0;
    const s = (performance.now() - t0) / 1000;
    console.error(
      `  ${what}: ${rows.toLocaleString('en-US')} rows (tasks ${(hi + 1).toLocaleString('en-US')} of ${n.toLocaleString('en-US')}), ${round(s, 1)} s, ${Math.round(rows / s).toLocaleString('en-US')} rows/s`,
    );
  }
  return rows;
}

/** The tenants, then N tasks and their events (chunks of ~1 M rows a statement), VACUUM ANALYZE, the marker. */
async function load(db: BenchDb, n: number, resume = false): Promise<LoadReport> {
  const c = await db.client();
  try {
    const t0 = performance.now();
    await c.query(
      `INSERT INTO tenants (id, name) SELECT t, t FROM unnest($1::text[]) AS t ON CONFLICT (id) DO NOTHING`,
      [TENANTS],
    );
    const spanStart = new Date(Date.now() - 3_600_000 - SPAN_SECONDS * 1000).toISOString();
    const tTasks = performance.now();
    const insertTasks = resume ? `${INSERT_TASKS} ON CONFLICT (id) DO NOTHING` : INSERT_TASKS;
    if (resume) await c.query('TRUNCATE task_events');
    await chunked(c, 'tasks', insertTasks, n, TASK_CHUNK, (lo, hi) => [lo, hi, spanStart, n]);
    const [{ n: tasks }] = (await c.query(`SELECT count(*)::int AS n FROM tasks`)).rows as { n: number }[];
    if (tasks !== n) throw new Error(`the loaded database holds ${tasks} tasks, not ${n}`);
    const tasksSeconds = secondsSince(tTasks);
    const tEvents = performance.now();
    const events = await chunked(c, 'task_events', INSERT_EVENTS, n, EVENT_CHUNK_TASKS, (lo, hi) => [
      lo,
      hi,
      spanStart,
      n,
      EVENTS_PER_TASK,
    ]);
    const eventsSeconds = secondsSince(tEvents);
    const tVacuum = performance.now();
    if (n > 0) console.error('  VACUUM ANALYZE tasks, task_events, the counters');
    await c.query('VACUUM ANALYZE tasks');
    await c.query('VACUUM ANALYZE task_events');
    // What autovacuum does within its next round after a burst (migration 1765700000000 sets the
    // delta tables' thresholds to 10,000 dead rows): the load's deltas, folded away, leave dead
    // pages that every counter read would otherwise scan.
    await c.query('VACUUM ANALYZE task_count_deltas, task_finish_deltas, task_counts, task_finish_minutes');
    const vacuumSeconds = secondsSince(tVacuum);
    const total = secondsSince(t0);
    const { rows } = await c.query<{ t: string; e: string; d: string }>(
      `SELECT pg_total_relation_size('tasks') AS t, pg_total_relation_size('task_events') AS e,
              pg_database_size(current_database()) AS d`,
    );
    if (n > 0) {
      const marker: LoadMarker = {
        workload: 'W10',
        version: LOAD_VERSION,
        tasks: n,
        events_per_task: EVENTS_PER_TASK,
        loaded_at: new Date().toISOString(),
        load_seconds: total,
      };
      const { rows: dbName } = await c.query<{ n: string }>('SELECT current_database() AS n');
      await c.query(
        `COMMENT ON DATABASE ${c.escapeIdentifier(dbName[0].n)} IS ${c.escapeLiteral(JSON.stringify(marker))}`,
      );
    }
    return {
      tasks,
      events,
      events_per_task: EVENTS_PER_TASK,
      tasks_seconds: tasksSeconds,
      events_seconds: eventsSeconds,
      vacuum_analyze_seconds: vacuumSeconds,
      total_seconds: total,
      tasks_bytes: Number(rows[0].t),
      task_events_bytes: Number(rows[0].e),
      database_bytes: Number(rows[0].d),
    };
  } finally {
    await c.end();
  }
}

/** A fresh database migrated by a hub (started once, stopped after the load), or the kept one when it matches. */
async function prepare(db: BenchDb, n: number): Promise<LoadReport | { reused: LoadMarker }> {
  if (REUSE && db.role === 'loaded' && (await db.exists())) {
    await db.start(); // embedded: the server runs with the hub
    const marker = await db.marker();
    await db.stop();
    if (marker && marker.version === LOAD_VERSION && marker.tasks === n && marker.events_per_task === EVENTS_PER_TASK) {
      console.error(`${db.role}: reusing ${db.where} (loaded ${marker.loaded_at} in ${marker.load_seconds} s)`);
      return { reused: marker };
    }
    console.error(`${db.role}: ${db.where} holds another load (${JSON.stringify(marker)}): loading again`);
  }
  const resume = RESUME && db.role === 'loaded' && (await db.exists());
  if (!resume) await db.create();
  const startMs = await db.start();
  console.error(
    `${db.role}: ${db.where} ${resume ? 'resumed' : 'migrated'} by the hub in ${Math.round(startMs)} ms; loading ${n} tasks`,
  );
  try {
    return await load(db, n, resume);
  } finally {
    await db.stop();
  }
}

// ------------------------------------------------------------ the calls

/** What one call returned: its time and a short note on the answer (counts seen, bytes). */
interface Shot {
  ms: number;
  note?: string;
}

interface Probe {
  once(): Promise<Shot>;
  close(): void;
}

interface CallDef {
  name: string;
  /** What the hub does for it, for the docs and the JSON. */
  what: string;
  open(hubUrl: string): Promise<Probe>;
}

class CallFailed extends Error {
  constructor(
    message: string,
    readonly ms: number,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;
const dig = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Json)[k] : undefined), o);

function httpCall(
  name: string,
  what: string,
  path: string,
  options: { headers?: Record<string, string>; note?: (body: string) => string } = {},
): CallDef {
  return {
    name,
    what,
    open: async (hubUrl) => ({
      once: async () => {
        const t0 = performance.now();
        try {
          const res = await fetch(`${hubUrl}${path}`, {
            headers: options.headers,
            signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
          });
          const body = await res.text();
          const ms = performance.now() - t0;
          if (!res.ok) throw new CallFailed(`${res.status} ${body.slice(0, 200)}`, ms);
          return { ms, note: options.note ? options.note(body) : `${body.length} B` };
        } catch (e) {
          if (e instanceof CallFailed) throw e;
          throw new CallFailed((e as Error).message, performance.now() - t0);
        }
      },
      close: () => undefined,
    }),
  };
}

const listNote =
  (rowsAt: string[], totalAt: string[]) =>
  (body: string): string => {
    const j = JSON.parse(body) as unknown;
    const rows = dig(j, ...rowsAt);
    return `rows ${Array.isArray(rows) ? rows.length : '?'}, total ${String(dig(j, ...totalAt))}`;
  };

const countsNote = (at: string[]) => (body: string) => JSON.stringify(dig(JSON.parse(body), ...at));

/** The dashboard's get_status: Socket.IO `/events`, emit with ack → the ack (HubStatusService.snapshot). */
const eventsGetStatus: CallDef = {
  name: '`get_status` on `/events` (dashboard)',
  what: 'Socket.IO /events emit get_status → ack; HubStatusService.snapshot() (counts by state, nodes online). The /events metrics_update push is the same snapshot.',
  open: async (hubUrl) => {
    const socket: Socket = io(`${hubUrl}/events`, { transports: ['websocket'], reconnection: false });
    await new Promise<void>((ok, fail) => {
      socket.once('connect', () => ok());
      socket.once('connect_error', fail);
    });
    return {
      once: async () => {
        const t0 = performance.now();
        try {
          const ack = (await socket.timeout(CALL_TIMEOUT_MS).emitWithAck('get_status', {})) as Json;
          const ms = performance.now() - t0;
          if (ack.success !== true) throw new CallFailed(JSON.stringify(ack).slice(0, 200), ms);
          return { ms, note: JSON.stringify(ack.tasks) };
        } catch (e) {
          if (e instanceof CallFailed) throw e;
          throw new CallFailed((e as Error).message, performance.now() - t0);
        }
      },
      close: () => socket.close(),
    };
  },
};

/** The Codex stream's get_status: raw WebSocket `/ws`, `{type: 'get_status'}` → the next `status` frame. */
const wsGetStatus: CallDef = {
  name: '`get_status` on `/ws` (Codex stream)',
  what: "raw /ws {type:'get_status'} → the next {type:'status'} frame; HubStatusService.snapshot() (counts, nodes)",
  open: async (hubUrl) => {
    const ws = new WebSocket(`${hubUrl.replace(/^http/, 'ws')}/ws`);
    let waiter: ((frame: Json) => void) | undefined;
    const backlog: Json[] = [];
    ws.on('message', (raw: WebSocket.RawData) => {
      const frame = JSON.parse(raw.toString()) as Json;
      if (waiter) waiter(frame);
      else backlog.push(frame);
    });
    const next = (type: string, timeoutMs: number): Promise<Json> =>
      new Promise((ok, fail) => {
        const i = backlog.findIndex((f) => f.type === type);
        if (i >= 0) return ok(backlog.splice(i, 1)[0]);
        const t = setTimeout(() => {
          waiter = undefined;
          fail(new Error(`no ${type} frame within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = (f) => {
          if (f.type !== type) return; // e.g. a heartbeat or a task push
          clearTimeout(t);
          waiter = undefined;
          ok(f);
        };
      });
    await new Promise<void>((ok, fail) => {
      ws.once('open', () => ok());
      ws.once('error', fail);
    });
    // The initial status (sent on connect) first, then no periodic metrics_update during the samples.
    await next('status', CALL_TIMEOUT_MS);
    ws.send(JSON.stringify({ type: 'unsubscribe_metrics' }));
    await next('metrics_subscribed', CALL_TIMEOUT_MS);
    backlog.length = 0;
    return {
      once: async () => {
        const t0 = performance.now();
        try {
          ws.send(JSON.stringify({ type: 'get_status' }));
          const frame = await next('status', CALL_TIMEOUT_MS);
          return { ms: performance.now() - t0, note: JSON.stringify(dig(frame, 'data', 'tasks')) };
        } catch (e) {
          throw new CallFailed((e as Error).message, performance.now() - t0);
        }
      },
      close: () => ws.close(),
    };
  },
};

const CALLS: CallDef[] = [
  httpCall('`GET /api/v1/tasks?limit=20`', 'canonical list, newest first', '/api/v1/tasks?limit=20', {
    note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']),
  }),
  httpCall(
    '`GET /api/v1/tasks?limit=20&status=completed`',
    'canonical list filtered by state',
    '/api/v1/tasks?limit=20&status=completed',
    { note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']) },
  ),
  httpCall(
    '`GET /api/v1/tasks?limit=20&offset=100000`',
    'canonical list, deep page (offset)',
    '/api/v1/tasks?limit=20&offset=100000',
    { note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']) },
  ),
  httpCall(
    '`GET /api/v1/tasks?limit=20` as tenant bench-t1',
    'canonical list, one tenant (X-Tenant-Id; row-level security filters)',
    '/api/v1/tasks?limit=20',
    {
      headers: { 'X-Tenant-Id': 'bench-t1' },
      note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']),
    },
  ),
  httpCall('`GET /tasks?limit=10` (Codex)', 'Codex list', '/tasks?limit=10', {
    note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']),
  }),
  httpCall('`GET /tasks?limit=10&page=5000` (Codex)', 'Codex list, deep page', '/tasks?limit=10&page=5000', {
    note: listNote(['data', 'tasks'], ['data', 'pagination', 'total']),
  }),
  httpCall('`GET /api/tasks` (seed 004)', 'seed 004 list (100 rows)', '/api/tasks', {
    note: listNote(['tasks'], ['total']),
  }),
  httpCall('`GET /api/v1/statistics`', 'statistics (defaults)', '/api/v1/statistics', {
    note: countsNote(['data', 'status_distribution']),
  }),
  httpCall(
    '`GET /metrics` (Prometheus, METRICS_TOKEN)',
    'Prometheus text, whole hub, as a scraper with the token',
    '/metrics',
    {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}`, Accept: 'text/plain;version=0.0.4' },
      note: (body) =>
        `${body.length} B, ${body.split('\n').find((l) => l.startsWith('taskhub_tasks{')) ?? 'no taskhub_tasks'}`,
    },
  ),
  httpCall(
    '`GET /metrics` JSON = `/ws` `metrics_update`',
    'the Codex metrics document: CodexMetricsService.document(), what /ws metrics_update pushes (documentFor(tenant) = document() in that tenant)',
    '/metrics?format=json',
    { note: countsNote(['data', 'tasks']) },
  ),
  httpCall('`GET /status`', 'Codex status (counts by state, nodes)', '/status', {
    note: countsNote(['data', 'tasks']),
  }),
  httpCall('`GET /health`', 'seed 002 readiness (database probe, queue size)', '/health', {
    note: (body) => {
      const j = JSON.parse(body) as unknown;
      return `queue_size ${String(dig(j, 'metrics', 'queue_size'))}, database ${String(dig(j, 'components', 'database', 'response_time'))} ms`;
    },
  }),
  httpCall('`GET /healthz`', 'Codex liveness (task counts, best effort within 1 s)', '/healthz', {
    note: countsNote(['tasks']),
  }),
  eventsGetStatus,
  wsGetStatus,
];

interface CallResult {
  n: number;
  warmup: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  first_error?: string;
  note?: string;
}

/** Warm-up (cut short once it used a third of the budget), then samples until SAMPLES or the budget. */
async function measureCall(call: CallDef, hubUrl: string): Promise<CallResult> {
  const probe = await call.open(hubUrl);
  const times: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let note: string | undefined;
  let warm = 0;
  const shoot = async (keep: boolean): Promise<void> => {
    try {
      const shot = await probe.once();
      if (keep) times.push(shot.ms);
      note = shot.note;
    } catch (e) {
      const failed = e as CallFailed;
      errors++;
      firstError ??= failed.message;
      if (keep) times.push(failed.ms ?? CALL_TIMEOUT_MS);
    }
  };
  try {
    const t0 = performance.now();
    while (warm < WARMUP && performance.now() - t0 < BUDGET_MS / 3) {
      await shoot(false);
      warm++;
    }
    const t1 = performance.now();
    while (times.length < SAMPLES && (times.length < MIN_SAMPLES || performance.now() - t1 < BUDGET_MS))
      await shoot(true);
  } finally {
    probe.close();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    n: sorted.length,
    warmup: warm,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1]),
    errors,
    ...(firstError ? { first_error: firstError } : {}),
    note,
  };
}

interface Phase {
  database: string;
  tasks: number;
  hub_start_ms: number;
  calls: CallResult[];
  pickup: { n: number; p50: number; p99: number; max: number };
}

/** A hub on `db` (started fresh), every call, then W3 pickup; the pickup tasks are deleted afterwards. */
async function measurePhase(db: BenchDb, tasks: number): Promise<Phase> {
  const hubStartMs = await db.start();
  const hubUrl = db.hub?.url ?? '';
  console.error(`${db.role}: hub healthy after ${Math.round(hubStartMs)} ms at ${hubUrl}`);
  try {
    const database = `${MODE === 'embedded' ? 'embedded ' : ''}PostgreSQL ${await serverVersion(db.url)}`;
    const calls: CallResult[] = [];
    for (const call of CALLS) {
      const r = await measureCall(call, hubUrl);
      console.error(
        `  ${db.role} ${call.name}: n ${r.n}, p50 ${r.p50}, p99 ${r.p99}, max ${r.max} ms${r.errors ? `, ${r.errors} errors (${r.first_error})` : ''} — ${r.note ?? ''}`,
      );
      calls.push(r);
    }
    const pickupStart = new Date(Date.now() - 1000).toISOString();
    const lat = await measurePickup(hubUrl, {
      samples: PICKUP_SAMPLES,
      warmup: PICKUP_WARMUP,
      deviceId: 'w10-device',
      type: 'w10-pickup',
    });
    const pickup = {
      n: lat.length,
      p50: round(percentile(lat, 50)),
      p99: round(percentile(lat, 99)),
      max: round(lat[lat.length - 1]),
    };
    console.error(`  ${db.role} W3 pickup: n ${pickup.n}, p50 ${pickup.p50}, p99 ${pickup.p99} ms`);
    // The loaded database keeps exactly its N tasks for the next --reuse.
    await sleep(500);
    const c = await db.client();
    try {
      await c.query(`DELETE FROM tasks WHERE type = 'w10-pickup' AND created_at >= $1`, [pickupStart]);
    } finally {
      await c.end();
    }
    return { database, tasks, hub_start_ms: Math.round(hubStartMs), calls, pickup };
  } finally {
    await db.stop();
  }
}

// ------------------------------------------------------------ the report

interface Row {
  call: string;
  what: string;
  empty: CallResult;
  loaded: CallResult;
  ratio_p99: number;
  pass: boolean;
  why?: string;
}

function verdict(empty: CallResult, loaded: CallResult): { ratio: number; pass: boolean; why?: string } {
  const ratio = round(loaded.p99 / empty.p99);
  const misses: string[] = [];
  if (loaded.p99 > TARGET_P99_MS) misses.push(`p99 ${loaded.p99} > ${TARGET_P99_MS} ms`);
  if (ratio > TARGET_RATIO) misses.push(`${ratio}× empty`);
  if (loaded.errors + empty.errors > 0) misses.push(`${loaded.errors + empty.errors} errors`);
  return { ratio, pass: misses.length === 0, ...(misses.length ? { why: misses.join('; ') } : {}) };
}

function hubCommit(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${rev}-dirty` : rev;
  } catch {
    return 'unknown';
  }
}

const fmt = (n: number): string => (n >= 100 ? String(Math.round(n)) : String(round(n, 1)));
const cell = (r: CallResult): string =>
  `${fmt(r.p50)} / ${fmt(r.p99)}${r.n < SAMPLES ? ` (n ${r.n})` : ''}${r.errors ? `, ${r.errors} err` : ''}`;

function table(rows: Row[], pickup: { empty: Phase['pickup']; loaded: Phase['pickup']; pass: boolean }): string {
  const n = TASKS.toLocaleString('en-US');
  const lines = [
    `| call | empty p50 / p99 ms | ${n} tasks p50 / p99 ms | ratio (p99) | target | result |`,
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.call} | ${cell(r.empty)} | ${cell(r.loaded)} | ${r.ratio_p99}× | ${TARGET} | ${r.pass ? 'pass' : `**miss** (${r.why})`} |`,
    ),
    `| W3 pickup (submit → device) | ${fmt(pickup.empty.p50)} / ${fmt(pickup.empty.p99)} | ${fmt(pickup.loaded.p50)} / ${fmt(pickup.loaded.p99)} | ${round(pickup.loaded.p99 / pickup.empty.p99)}× | ${PICKUP_TARGET} | ${pickup.pass ? 'pass' : '**miss**'} |`,
  ];
  return lines.join('\n');
}

// ------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = performance.now();
  const loadAvgStart = loadavg().map((l) => round(l));
  const commit = hubCommit();
  const empty = new BenchDb('empty', 'taskhub_bench_w10_empty');
  const loaded = new BenchDb('loaded', 'taskhub_bench_w10_loaded');
  console.error(
    `W10: ${MODE}, ${TASKS.toLocaleString('en-US')} tasks × ${EVENTS_PER_TASK} events; ${SAMPLES} samples (+${WARMUP} warm-up), budget ${BUDGET_MS / 1000} s a call`,
  );
  let result: Record<string, unknown> | undefined;
  try {
    const loadReport = await prepare(loaded, TASKS);
    if ('tasks' in loadReport)
      console.error(
        `loaded: ${loadReport.tasks} tasks in ${loadReport.tasks_seconds} s, ${loadReport.events} events in ${loadReport.events_seconds} s, VACUUM ANALYZE ${loadReport.vacuum_analyze_seconds} s; ${Math.round(loadReport.database_bytes / 2 ** 20)} MB`,
      );
    await prepare(empty, 0);
    const phaseEmpty = await measurePhase(empty, 0);
    const phaseLoaded = await measurePhase(loaded, TASKS);

    const rows: Row[] = CALLS.map((call, i) => {
      const v = verdict(phaseEmpty.calls[i], phaseLoaded.calls[i]);
      return {
        call: call.name,
        what: call.what,
        empty: phaseEmpty.calls[i],
        loaded: phaseLoaded.calls[i],
        ratio_p99: v.ratio,
        pass: v.pass,
        ...(v.why ? { why: v.why } : {}),
      };
    });
    const pe = phaseEmpty.pickup;
    const pl = phaseLoaded.pickup;
    const pickupPass = pl.p50 <= 1.25 * pe.p50 + 1 && pl.p99 <= 2 * pe.p99;
    const md = table(rows, { empty: pe, loaded: pl, pass: pickupPass });
    const misses = [...rows.filter((r) => !r.pass).map((r) => r.call), ...(pickupPass ? [] : ['W3 pickup'])];
    result = {
      workload: 'W10-summaries',
      mode: MODE,
      database: phaseLoaded.database,
      commit,
      tasks: TASKS,
      events_per_task: EVENTS_PER_TASK,
      load: loadReport,
      hub_start_ms: { empty: phaseEmpty.hub_start_ms, loaded: phaseLoaded.hub_start_ms },
      samples: SAMPLES,
      warmup: WARMUP,
      budget_s: BUDGET_MS / 1000,
      target: TARGET,
      calls: rows,
      pickup: { empty: pe, loaded: pl, target: PICKUP_TARGET, pass: pickupPass },
      passed: rows.filter((r) => r.pass).length + (pickupPass ? 1 : 0),
      missed: misses,
      load_avg_start: loadAvgStart,
      load_avg_end: loadavg().map((l) => round(l)),
      seconds: secondsSince(started),
    };
    const base = resolve(`artifacts/w10-summaries-${commit}-${TASKS}`);
    mkdirSync(dirname(base), { recursive: true });
    writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    const header = `W10 summaries at scale — ${MODE} (${phaseLoaded.database}), commit ${commit}, ${TASKS.toLocaleString('en-US')} finished tasks × ${EVENTS_PER_TASK} events, ${new Date().toISOString()}`;
    writeFileSync(`${base}.md`, `${header}\n\n${md}\n`);
    console.log(`\n${header}\n\n${md}\n`);
    console.log(
      misses.length
        ? `MISSED ${misses.length} of ${rows.length + 1}: ${misses.join(', ')}`
        : `all ${rows.length + 1} met`,
    );
    console.log(`JSON: ${base}.json\nmarkdown: ${base}.md\n`);
    console.log(
      JSON.stringify({
        workload: 'W10-summaries',
        mode: MODE,
        tasks: TASKS,
        load_seconds: 'tasks' in loadReport ? loadReport.total_seconds : 'reused',
        worst_p99_ms: Math.max(...rows.map((r) => r.loaded.p99)),
        passed: result.passed,
        missed: misses,
      }),
    );
  } finally {
    await empty.remove().catch((e: unknown) => console.error('removing the empty database:', e));
    if (KEEP) console.error(`kept ${loaded.where} (--reuse skips the load next time)`);
    else await loaded.remove().catch((e: unknown) => console.error('removing the loaded database:', e));
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
