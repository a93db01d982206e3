// Event fan-out (issue: live events): 1,000 /events subscribers on one task's stream, in
// client processes; a device reports progress; p50/p99 delivery latency (device send →
// subscriber receive) and the hub process's CPU over the run.
// The hub runs on a fresh database taskhub_bench_fanout + BENCH_DB_SUFFIX on the local PostgreSQL.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DeviceClient } from '../src/sdk/device-client.js';
import { freshDatabase, Hub, percentile, postJson, round, sleep } from './lib/services.js';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const UPDATES = Number(process.env.BENCH_UPDATES ?? 200);
/** One progress update every INTERVAL ms: 20 a second to 1,000 subscribers is 20,000 deliveries a second. */
const INTERVAL = Number(process.env.BENCH_INTERVAL_MS ?? 50);
const PER_PROCESS = 500;
const now = (): number => performance.timeOrigin + performance.now();

/** utime + stime of a process in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const hub = await new Hub({ DATABASE_URL: await freshDatabase('taskhub_bench_fanout') }).start();
  const fleets: ChildProcess[] = [];
  let device: DeviceClient | undefined;
  try {
    let task: { task_id: string; attempt: number } | undefined;
    device = new DeviceClient({ url: hub.url, id: 'fanout-device' }).onTask(async (ctx) => {
      task = { task_id: ctx.task.task_id, attempt: ctx.task.attempt };
      return new Promise(() => undefined); // holds the task; progress is sent below
    });
    await device.connect();
    const created = await postJson<{ data: { task_id: string } }>(`${hub.url}/api/v1/tasks`, { prompt: 'fan-out' });
    while (!task) await sleep(10);
    for (let p = 0; p * PER_PROCESS < SUBSCRIBERS; p++) {
      const n = Math.min(PER_PROCESS, SUBSCRIBERS - p * PER_PROCESS);
      const child = fork(resolve('dist/bench/events-fleet.js'), [hub.url, String(n), created.data.task_id], {
        stdio: 'inherit',
      });
      fleets.push(child);
      await new Promise<void>((ok) => child.on('message', (m: { type: string }) => m.type === 'ready' && ok()));
    }
    const pid = hub.pid as number;
    const cpuBefore = cpuSeconds(pid);
    const started = now();
    for (let i = 1; i <= UPDATES; i++) {
      device.socket.emit('task_progress', {
        task_id: task.task_id,
        attempt: task.attempt,
        progress: (i * 100) / UPDATES,
        message: String(now()),
      });
      await sleep(INTERVAL);
    }
    await sleep(3000); // let the last updates arrive
    const wall = (now() - started) / 1000;
    const cpu = cpuSeconds(pid) - cpuBefore;
    const latencies = (
      await Promise.all(
        fleets.map(
          (f) =>
            new Promise<number[]>((ok) => {
              f.on('message', (m: { type: string; latencies: number[] }) => m.type === 'latencies' && ok(m.latencies));
              f.send({ type: 'report' });
            }),
        ),
      )
    )
      .flat()
      .sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        workload: 'events-fanout',
        subscribers: SUBSCRIBERS,
        updates: UPDATES,
        updates_per_s: round(1000 / INTERVAL),
        deliveries: latencies.length,
        expected_deliveries: SUBSCRIBERS * UPDATES,
        p50_ms: round(percentile(latencies, 50)),
        p99_ms: round(percentile(latencies, 99)),
        hub_cpu_percent_of_one_core: round((cpu / wall) * 100, 1),
        note: 'latency from the device sending task_progress to a subscriber receiving it; no anchor runs this workload',
      }),
    );
  } finally {
    device?.close();
    fleets.forEach((f) => f.connected && f.send({ type: 'stop' }));
    await hub.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
