// W4 (BENCHMARKS.md): 1k / 5k / 10k devices registered and heartbeating from separate client
// processes; hub heap and RSS per device, registration p99. Sizes: BENCH_W4_SIZES (default 1000,5000).
// The hub runs on a fresh database taskhub_bench_w4 + BENCH_DB_SUFFIX on the local PostgreSQL.
// BENCH_W4_HEAPSNAPSHOT=1: the hub writes a heap snapshot (after a full GC) into its working
// directory before the fleets connect and once they are all registered (diff them by constructor).
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { freshDatabase, Hub, percentile, round, sleep } from './lib/services.js';

const SIZES = (process.env.BENCH_W4_SIZES ?? '1000,5000').split(',').map(Number);
const PER_PROCESS = 500;

interface HealthMetrics {
  metrics: { rss_bytes: number; heap_used_bytes: number };
}

const SNAPSHOTS = process.env.BENCH_W4_HEAPSNAPSHOT === '1';

/** With BENCH_W4_HEAPSNAPSHOT: SIGUSR2 makes the hub (started with --heapsnapshot-signal) write one. */
async function snapshot(hub: Hub): Promise<void> {
  if (!SNAPSHOTS || !hub.pid) return;
  process.kill(hub.pid, 'SIGUSR2');
  // Writing it blocks the hub; /healthz answers once it is done.
  for (let i = 0; i < 120; i++) {
    await sleep(500);
    if (
      await fetch(`${hub.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
  }
}

/** The hub's CPU time so far (utime + stime from /proc, ms): per device, robust to a busy machine. */
function cpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks (USER_HZ 100)
}

async function memory(url: string): Promise<{ rss: number; heap: number }> {
  const samples: { rss: number; heap: number }[] = [];
  for (let i = 0; i < 5; i++) {
    const h = (await (await fetch(`${url}/health`)).json()) as HealthMetrics;
    samples.push({ rss: h.metrics.rss_bytes, heap: h.metrics.heap_used_bytes });
    await sleep(200);
  }
  // The smallest heap of a few samples is the closest to the live set without forcing a GC.
  return samples.reduce((a, b) => (b.heap < a.heap ? b : a));
}

async function run(size: number): Promise<Record<string, unknown>> {
  // Every fleet connects from 127.0.0.1: the per-address limit (MAX_CONNECTIONS_PER_ADDRESS, 1000) is off here.
  const hub = await new Hub({
    DATABASE_URL: await freshDatabase('taskhub_bench_w4'),
    MAX_CONNECTIONS_PER_ADDRESS: '0',
  }).start();
  const fleets: ChildProcess[] = [];
  try {
    await sleep(1000);
    const before = await memory(hub.url);
    await snapshot(hub);
    const started = performance.now();
    const cpuBefore = cpuMs(hub.pid);
    const latencies: number[] = [];
    let retries = 0;
    await Promise.all(
      Array.from({ length: Math.ceil(size / PER_PROCESS) }, (_, p) => {
        const n = Math.min(PER_PROCESS, size - p * PER_PROCESS);
        const child = fork(resolve('dist/bench/connection-fleet.js'), [hub.url, String(n), `w4-${p}`], {
          stdio: 'inherit',
        });
        fleets.push(child);
        return new Promise<void>((ok, fail) => {
          child.on('message', (m: { type: string; latencies: number[]; retries: number }) => {
            if (m.type === 'ready') {
              latencies.push(...m.latencies);
              retries += m.retries;
              ok();
            }
          });
          child.once('exit', (code) => code !== 0 && fail(new Error(`fleet ${p} exited ${code}`)));
        });
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuMs(hub.pid) - cpuBefore;
    await sleep(3000);
    const after = await memory(hub.url);
    await snapshot(hub);
    latencies.sort((a, b) => a - b);
    return {
      workload: `W4-connections-${size}`,
      devices: latencies.length,
      connect_retries: retries,
      register_p50_ms: round(percentile(latencies, 50)),
      register_p99_ms: round(percentile(latencies, 99)),
      connect_all_s: round(seconds),
      hub_cpu_ms_per_device: round(cpu / size),
      heap_per_device_kb: round((after.heap - before.heap) / size / 1024),
      rss_per_device_kb: round((after.rss - before.rss) / size / 1024),
      target: '10k on one process, <= 10 KB heap per device, p99 <= 50 ms',
      anchor: 'Socket.IO published ~9 KB heap per connection at 10k (other hardware)',
    };
  } catch (e) {
    console.error(`hub output (tail):\n${hub.log.slice(-4000)}`);
    throw e;
  } finally {
    fleets.forEach((f) => f.connected && f.send({ type: 'stop' }));
    await hub.stop();
  }
}

async function main(): Promise<void> {
  if (SNAPSHOTS)
    process.env.BENCH_HUB_NODE_ARGS = `${process.env.BENCH_HUB_NODE_ARGS ?? ''} --heapsnapshot-signal=SIGUSR2`;
  for (const size of SIZES) console.log(JSON.stringify(await run(size)));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
