// W3 (BENCHMARKS.md): idle device, 500 sequential POST /api/v1/tasks → the device receives
// new_task; p50/p99, beside graphile-worker's addJob → task start from the same run.
import { DeviceClient } from '../src/sdk/device-client.js';
import { graphilePickup } from './lib/graphile.js';
import { freshDatabase, Hub, percentile, round } from './lib/services.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);

async function hubPickup(): Promise<number[]> {
  const hub = await new Hub({ DATABASE_URL: await freshDatabase('taskhub_bench_w3') }).start();
  let arrived: ((at: number) => void) | undefined;
  const device = new DeviceClient({ url: hub.url, id: 'w3-device', capacity: 4 }).onTask(async () => {
    arrived?.(performance.now());
    return { ok: true };
  });
  try {
    await device.connect();
    const latencies: number[] = [];
    for (let i = 0; i < SAMPLES + 20; i++) {
      const got = new Promise<number>((r) => (arrived = r));
      const t0 = performance.now();
      const res = await fetch(`${hub.url}/api/v1/tasks`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'pickup', data: { i } }),
      });
      if (res.status !== 201) throw new Error(`submit failed: ${res.status}`);
      await res.arrayBuffer();
      const at = await got;
      if (i >= 20) latencies.push(at - t0); // the first 20 warm up connections and JIT
    }
    return latencies;
  } finally {
    device.close();
    await hub.stop();
  }
}

async function main(): Promise<void> {
  const gw = (await graphilePickup(await freshDatabase('taskhub_bench_gw'), SAMPLES)).sort((a, b) => a - b);
  const ours = (await hubPickup()).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      workload: 'W3-pickup',
      samples: ours.length,
      hub_p50_ms: round(percentile(ours, 50)),
      hub_p99_ms: round(percentile(ours, 99)),
      anchor: 'graphile-worker 0.17.3 addJob -> task start',
      anchor_p50_ms: round(percentile(gw, 50)),
      anchor_p99_ms: round(percentile(gw, 99)),
      target: 'p50 <= 3 ms, p99 <= 10 ms',
      note: 'hub latency includes the HTTP submit and the Socket.IO hop',
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
