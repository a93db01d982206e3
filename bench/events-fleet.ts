// A process holding N /events subscribers for the fan-out benchmark. Each subscribes to one
// task and records, for every task_progress, now minus the send time carried in the message.
//   node dist/bench/events-fleet.js <hubUrl> <count> <taskId>
import { io, type Socket } from 'socket.io-client';

const [url, count, taskId] = process.argv.slice(2);
const sockets: Socket[] = [];
const latencies: number[] = [];
const now = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  for (let i = 0; i < Number(count); i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, Number(count) - i) }, async () => {
        const s = io(`${url}/events`, { transports: ['websocket'], forceNew: true, reconnection: false });
        sockets.push(s);
        s.on('task_progress', (d: { message: string }) => latencies.push(now() - Number(d.message)));
        await new Promise<void>((ok, fail) => {
          s.once('connect', () => ok());
          s.once('connect_error', fail);
        });
        await s.timeout(30_000).emitWithAck('subscribe_tasks', { taskIds: [taskId] });
      }),
    );
  }
  process.send?.({ type: 'ready' });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'report') process.send?.({ type: 'latencies', latencies });
  if (m.type === 'stop') {
    sockets.forEach((s) => s.disconnect());
    process.exit(0);
  }
});

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
