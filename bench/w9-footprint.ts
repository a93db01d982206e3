// W9 (BENCHMARKS.md): idle footprint of the default `npm start`. The hub starts with no
// DATABASE_URL (its embedded PostgreSQL in a temp DATA_DIR, removed afterwards), answers
// /healthz, gets nothing to do for BENCH_IDLE_SECONDS, and is then measured from /proc: the hub
// process, plus its PostgreSQL server (the postmaster from DATA_DIR/pg/postmaster.pid and every
// child of it, `ps --ppid`).
//   rss_sum_mb  hub RSS + every postgres RSS: counts the server's shared memory once per process
//   pss_sum_mb  the same with PSS (shared pages divided among the processes mapping them): the
//               honest total, what the target is judged on
// For comparison, a second line: the hub on a fresh database of the local PostgreSQL (hub process
// only; that server is shared with everything else on the machine and not counted).
//
//   node dist/bench/w9-footprint.js [--mode=embedded|postgres|both]     (npm run bench:w9)
//   BENCH_IDLE_SECONDS  idle time before measuring (default 10)
//   BENCH_DB_SUFFIX     appended to the postgres mode's database name
// The hub is node dist/src/main.js itself (what `npm start` runs after its build step), not the
// npm wrapper process.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  childPids,
  embeddedPostmasterPid,
  type HubMode,
  round,
  selectedModes,
  sleep,
  startModeHub,
  type Teardown,
} from './lib/services.js';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 10);
const MODES = selectedModes();
const TARGET_MB = 300;
const MB = 1024 * 1024;
/**
 * The bench Hub turns auth and the rate limit off and logs warnings only; `npm start` does
 * neither, so W9 puts back the defaults of src/config/app-config.ts (auth and rate-limit state
 * are memory an idle hub holds).
 */
const DEFAULTS = { AUTH_REQUIRED: 'true', RATE_LIMIT_MAX: '6000', LOG_LEVEL: 'info' };

interface ProcessMemory {
  pid: number;
  /** The process's own name for itself: "node", "postgres: checkpointer", … */
  name: string;
  rss_mb: number;
  pss_mb: number;
}

/** A "Key:   1234 kB" field of a /proc file, in bytes. */
function kbField(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${key} in /proc`);
  return Number(m[1]) * 1024;
}

function memoryOf(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  // cmdline: postgres retitles its processes ("postgres: walwriter"); NULs separate arguments.
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const name = cmdline[0]?.startsWith('postgres:') ? cmdline[0].trim() : (cmdline[0]?.split('/').pop() ?? '?');
  return { pid, name, rss_mb: round(kbField(status, 'VmRSS') / MB, 1), pss_mb: round(kbField(rollup, 'Pss') / MB, 1) };
}

/** The embedded server's processes: the postmaster first, then its children. */
function postgresProcesses(dataDir: string): ProcessMemory[] {
  const postmaster = embeddedPostmasterPid(dataDir);
  if (postmaster === undefined) throw new Error(`no postmaster.pid in ${dataDir}/pg`);
  const out: ProcessMemory[] = [];
  for (const pid of [postmaster, ...childPids(postmaster)]) {
    try {
      out.push(memoryOf(pid));
    } catch (e) {
      // A backend may end between ps and /proc (e.g. an autovacuum worker); the postmaster must not.
      if (pid === postmaster) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  return out;
}

const sum = (ps: ProcessMemory[], key: 'rss_mb' | 'pss_mb'): number =>
  round(
    ps.reduce((a, p) => a + p[key], 0),
    1,
  );

async function footprint(mode: HubMode): Promise<Record<string, unknown>> {
  const started = await startModeHub(mode, 'taskhub_bench_w9', { env: DEFAULTS });
  let teardown: Teardown | undefined;
  try {
    await sleep(IDLE_SECONDS * 1000);
    const hubPid = started.hub.pid;
    if (hubPid === undefined) throw new Error('the hub has no pid');
    const hub = memoryOf(hubPid);
    const dataDir = started.dataDir;
    const postgres = mode === 'embedded' && dataDir ? postgresProcesses(dataDir) : [];
    teardown = await started.close();
    const all = [hub, ...postgres];
    const pss = sum(all, 'pss_mb');
    const rss = sum(all, 'rss_mb');
    return {
      workload: 'W9-idle-footprint',
      mode,
      database: started.database,
      idle_seconds: IDLE_SECONDS,
      rss_sum_mb: rss,
      pss_sum_mb: pss,
      hub,
      ...(mode === 'embedded'
        ? {
            postgres_processes: postgres.length,
            postgres_rss_sum_mb: sum(postgres, 'rss_mb'),
            postgres_pss_sum_mb: sum(postgres, 'pss_mb'),
            postgres,
            counted: 'hub + its embedded PostgreSQL (postmaster and children)',
          }
        : { counted: 'hub process only (the local PostgreSQL server is shared and not counted)' }),
      target: `≤ ${TARGET_MB} MB`, // BENCHMARKS.md
      // Judged on PSS; the RSS sum counts shared memory once per postgres process.
      target_met_pss: pss <= TARGET_MB,
      target_met_rss_sum: rss <= TARGET_MB,
      ...teardown,
      load_avg: loadavg().map((l) => round(l)),
    };
  } finally {
    if (!teardown) await started.close();
  }
}

async function main(): Promise<void> {
  for (const mode of MODES) console.log(JSON.stringify(await footprint(mode)));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
