/** Memory and CPU of a managed process, read from /proc (Linux); null where /proc is absent. */
import { readFile } from 'node:fs/promises';

export interface ProcessUsage {
  memory_mb: number;
  cpu_percent: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
const last = new Map<number, { ticks: number; at: number }>();

export async function processUsage(pid: number): Promise<ProcessUsage | null> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8'),
    ]);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const now = Date.now();
    const before = last.get(pid);
    last.set(pid, { ticks, at: now });
    if (last.size > 1000) last.clear();
    const cpu =
      before && now > before.at ? ((ticks - before.ticks) / CLOCK_TICKS / ((now - before.at) / 1000)) * 100 : 0;
    return { memory_mb: Math.round((rssKb / 1024) * 10) / 10, cpu_percent: Math.round(Math.max(0, cpu) * 10) / 10 };
  } catch {
    return null;
  }
}
