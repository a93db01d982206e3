// A separate process holding N devices that answer tasks, for W2/W5. Talks to its parent over IPC.
//   node dist/bench/device-fleet.js <hubUrl> <count> <capacity> <prefix> <taskMs>
import { DeviceClient } from '../src/sdk/device-client.js';

const [url, count, capacity, prefix, taskMs] = process.argv.slice(2);
const devices: DeviceClient[] = [];
let finished = 0;

async function main(): Promise<void> {
  const work = Number(taskMs);
  for (let i = 0; i < Number(count); i++) {
    const d = new DeviceClient({ url, id: `${prefix}-${i}`, capacity: Number(capacity) }).onTask(async () => {
      if (work > 0) await new Promise((r) => setTimeout(r, work));
      finished++;
      return { ok: true };
    });
    devices.push(d);
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
