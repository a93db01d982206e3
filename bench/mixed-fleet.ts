// A separate process holding a mixed fleet for W13: <classes> device classes (tag `class-<k>`) of
// <perClass> devices each, every task a few ms of simulated work. Talks to its parent over IPC:
// `ready` once every device is registered, `probe` (seq, received at) for each probe task as it
// arrives, `progress` (finished per class) every 500 ms.
//   node dist/bench/mixed-fleet.js <hubUrl> <classes> <perClass> <capacity> <taskMs>
import { DeviceClient } from '../src/sdk/device-client.js';

const [url, classes, perClass, capacity, taskMs] = process.argv.slice(2);
const devices: DeviceClient[] = [];
const finished: number[] = Array.from({ length: Number(classes) }, () => 0);

/** Wall-clock milliseconds with sub-ms resolution, comparable with the parent's (same machine). */
const wallMs = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const work = Number(taskMs);
  for (let k = 0; k < Number(classes); k++) {
    for (let i = 0; i < Number(perClass); i++) {
      const d = new DeviceClient({
        url,
        id: `w13-c${k}-${i}`,
        capacity: Number(capacity),
        tags: [`class-${k}`],
      }).onTask(async ({ task }) => {
        const data = task.data as { probe?: number } | undefined;
        if (typeof data?.probe === 'number') process.send?.({ type: 'probe', seq: data.probe, at: wallMs() });
        if (work > 0) await new Promise((r) => setTimeout(r, work));
        finished[k]++;
        return { ok: true };
      });
      devices.push(d);
    }
  }
  await Promise.all(devices.map((d) => d.connect()));
  process.send?.({ type: 'ready', count: devices.length });
  setInterval(() => process.send?.({ type: 'progress', finished }), 500).unref();
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') {
    devices.forEach((d) => d.close());
    process.exit(0);
  }
});

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
