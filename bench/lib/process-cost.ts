// Cost of a workload per unit, from the kernel's and PostgreSQL's counters: the hub's CPU and
// syscalls (/proc), the embedded server's CPU (its postmaster and children), and transactions
// and rows of the database (pg_stat_database). Shared by W2 and W3.
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { childPids, embeddedPostmasterPid } from './services.js';

const CLK_TCK = 100;

/** utime + stime of a process in µs (0 when it is gone). */
export function cpuUs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** syscw, syscr of a process (0 when it is gone). */
export function syscalls(pid: number | undefined): { w: number; r: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(io)?.[1] ?? 0);
    return { w: field('syscw'), r: field('syscr') };
  } catch {
    return { w: 0, r: 0 };
  }
}

export interface CostSample {
  hub: number;
  sys: { w: number; r: number };
  db: number | null;
  xacts: number;
  inserted: number;
  updated: number;
}

export async function sampleCost(
  db: pg.Client,
  hubPid: number | undefined,
  dataDir: string | undefined,
): Promise<CostSample> {
  const { rows } = await db.query(
    `SELECT (xact_commit + xact_rollback)::float8 AS xacts, tup_inserted::float8 AS inserted, tup_updated::float8 AS updated
     FROM pg_stat_database WHERE datname = current_database()`,
  );
  const postmaster = dataDir === undefined ? undefined : embeddedPostmasterPid(dataDir);
  const dbCpu =
    postmaster === undefined ? null : [postmaster, ...childPids(postmaster)].reduce((sum, p) => sum + cpuUs(p), 0);
  const r = rows[0] as { xacts: number; inserted: number; updated: number };
  return { hub: cpuUs(hubPid), sys: syscalls(hubPid), db: dbCpu, ...r };
}
