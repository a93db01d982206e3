// A process holding N plain socket.io-client devices for W4: registers them (ack timed),
// heartbeats every interval, and reports registration latencies to its parent.
//   node dist/bench/connection-fleet.js <hubUrl> <count> <prefix>
import { io, type Socket } from 'socket.io-client';

const [url, count, prefix] = process.argv.slice(2);
const sockets: Socket[] = [];

/** Connection attempts that failed (timed out or reset on a crowded machine) and were made again. */
let retries = 0;

/** One device's connection; a failed attempt is made again (up to 5), and counted. */
async function connect(): Promise<Socket> {
  for (let attempt = 1; ; attempt++) {
    const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    try {
      await new Promise<void>((ok, fail) => {
        s.once('connect', () => ok());
        s.once('connect_error', fail);
      });
      return s;
    } catch (e) {
      s.close();
      if (attempt >= 5) throw e;
      retries++;
    }
  }
}

async function main(): Promise<void> {
  const latencies: number[] = [];
  const n = Number(count);
  // Connect in waves of 50 so the run measures the hub, not a connection storm from one process.
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const s = await connect();
        sockets.push(s);
        const t0 = performance.now();
        const ack = (await s.timeout(30_000).emitWithAck('device_register', { device_id: `${prefix}-${i + j}` })) as {
          success: boolean;
        };
        if (!ack.success) throw new Error('registration refused');
        latencies.push(performance.now() - t0);
      }),
    );
  }
  const beat = setInterval(() => sockets.forEach((s) => s.emit('heartbeat', {})), 10_000);
  beat.unref();
  process.send?.({ type: 'ready', latencies, retries });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') {
    sockets.forEach((s) => s.disconnect());
    process.exit(0);
  }
});

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
