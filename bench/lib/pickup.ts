import { DeviceClient } from '../../src/sdk/device-client.js';

/**
 * W3's measurement (BENCHMARKS.md), shared by W3 and W10: one idle SDK device (capacity 4) on
 * `hubUrl`; `warmup` + `samples` sequential `POST /api/v1/tasks`, each awaited until the device
 * has the task (`new_task`); the measured latencies (ms, POST sent → device has it), sorted.
 * The device answers every task at once, so each submitted task ends `completed`.
 */
export async function measurePickup(
  hubUrl: string,
  options: { samples: number; warmup: number; deviceId?: string; type?: string },
): Promise<number[]> {
  let arrived: ((at: number) => void) | undefined;
  const device = new DeviceClient({ url: hubUrl, id: options.deviceId ?? 'w3-device', capacity: 4 }).onTask(
    async () => {
      arrived?.(performance.now());
      return { ok: true };
    },
  );
  try {
    await device.connect();
    const latencies: number[] = [];
    for (let i = 0; i < options.samples + options.warmup; i++) {
      const got = new Promise<number>((r) => (arrived = r));
      const t0 = performance.now();
      const res = await fetch(`${hubUrl}/api/v1/tasks`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: options.type ?? 'pickup', data: { i } }),
      });
      if (res.status !== 201) throw new Error(`submit failed: ${res.status}`);
      await res.arrayBuffer();
      const at = await got;
      if (i >= options.warmup) latencies.push(at - t0);
    }
    return latencies.sort((a, b) => a - b);
  } finally {
    device.close();
  }
}
