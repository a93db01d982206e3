import { Agent, request } from 'node:http';
import { DeviceClient } from '../../src/sdk/device-client.js';

/**
 * One `POST` on a kept-alive `node:http` connection; resolves with the status once the answer
 * is read. The load generator shares the machine's two cores with the hub and its database, so
 * its own cost per request shows in the latency it measures: `fetch` (undici) spent ~0.7 ms of
 * CPU per request here, a bare `node:http` server ~0.2 ms to answer it.
 */
function post(agent: Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

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
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL('/api/v1/tasks', hubUrl);
  try {
    await device.connect();
    const latencies: number[] = [];
    for (let i = 0; i < options.samples + options.warmup; i++) {
      const got = new Promise<number>((r) => (arrived = r));
      const t0 = performance.now();
      const status = await post(agent, url, JSON.stringify({ type: options.type ?? 'pickup', data: { i } }));
      if (status !== 201) throw new Error(`submit failed: ${status}`);
      const at = await got;
      if (i >= options.warmup) latencies.push(at - t0);
    }
    return latencies.sort((a, b) => a - b);
  } finally {
    agent.destroy();
    device.close();
  }
}
