// A separate process holding N devices for W7 (faults), forked by bench/w7-chaos.ts.
//   node dist/bench/chaos-fleet.js <hubUrl> <count> <prefix> <taskMs> [key] [--sdk]
//
// Default: devices written like a seed-004 client on socket.io-client (no SDK): default
// reconnection, `device_register` on every connect, `new_task` -> run for taskMs ->
// `task_result {task_id, success, result}` (no attempt, no heartbeat, no acks), `cancel_task`
// stops the run without a result. --sdk: the same devices on src/sdk's DeviceClient.
// Every execution is recorded ({task_id, device, attempt, start, end}, epoch ms) so the
// bench can count duplicate and overlapping executions.
//
// IPC: sends {type:'ready'} once every device is registered; {type:'report'} ->
// {type:'executions', executions, disconnects, connect_errors, server_shutdowns, registrations,
// hub_errors}; registrations counts every register_success (re-registrations included).
// {type:'stop'} -> closes and exits.
import { io, type Socket } from 'socket.io-client';
import { DeviceClient } from '../src/sdk/device-client.js';

export interface Execution {
  task_id: string;
  device: string;
  attempt: number | null;
  start: number;
  /** When the result was emitted (or the run cancelled); null while still running. */
  end: number | null;
  cancelled?: boolean;
}

const args = process.argv.slice(2);
const sdk = args.includes('--sdk');
const [url, count, prefix, taskMsArg, key] = args.filter((a) => a !== '--sdk');
const TASK_MS = Number(taskMsArg ?? 300);

const executions: Execution[] = [];
const disconnects: Record<string, number> = {};
let connectErrors = 0;
let serverShutdowns = 0;
let registrations = 0;
/** `error` events from the hub by code (e.g. NOT_REGISTERED for a result sent before re-registering). */
const hubErrors: Record<string, number> = {};
const closers: (() => void)[] = [];

const countDisconnect = (reason: string): void => {
  disconnects[reason] = (disconnects[reason] ?? 0) + 1;
};
const countHubError = (e: { code?: string } | undefined): void => {
  const code = e?.code ?? 'unknown';
  hubErrors[code] = (hubErrors[code] ?? 0) + 1;
};
const onShutdown =
  (device: string) =>
  (m: unknown): void => {
    serverShutdowns++;
    console.error(`[chaos-fleet] ${device}: server_shutdown ${JSON.stringify(m)}`);
  };

/** A seed-004 device as a phone app would write it, straight on socket.io-client. */
function rawDevice(id: string): Promise<void> {
  // forceNew: in the field each device is its own process with its own connection;
  // without it io() would share one Manager (one connection) between devices of a URL.
  const socket: Socket = io(url, { transports: ['websocket'], auth: key ? { token: key } : {}, forceNew: true });
  const running = new Map<string, { timer: NodeJS.Timeout; record: Execution }[]>();
  socket.on('connect', () => socket.emit('device_register', { device_id: id, device_name: `chaos ${id}` }));
  socket.on('disconnect', (reason) => countDisconnect(reason));
  socket.on('connect_error', () => connectErrors++);
  socket.on('server_shutdown', onShutdown(id));
  socket.on('register_success', () => registrations++);
  socket.on('error', countHubError);
  socket.on('new_task', (task: { task_id: string; attempt?: number }) => {
    const record: Execution = {
      task_id: task.task_id,
      device: id,
      attempt: task.attempt ?? null,
      start: Date.now(),
      end: null,
    };
    executions.push(record);
    const timer = setTimeout(() => {
      const list = running.get(task.task_id) ?? [];
      running.set(
        task.task_id,
        list.filter((r) => r.record !== record),
      );
      record.end = Date.now();
      // socket.io-client buffers this while disconnected and sends it on reconnect, as a seed-004 app would.
      socket.emit('task_result', { task_id: task.task_id, success: true, result: { ok: true } });
    }, TASK_MS);
    running.set(task.task_id, [...(running.get(task.task_id) ?? []), { timer, record }]);
  });
  socket.on('cancel_task', (m: { task_id: string }) => {
    for (const { timer, record } of running.get(m.task_id) ?? []) {
      clearTimeout(timer);
      record.end = Date.now();
      record.cancelled = true;
    }
    running.delete(m.task_id);
  });
  closers.push(() => socket.disconnect());
  return new Promise((ok) => socket.once('register_success', () => ok()));
}

/** The same device on the SDK (heartbeats, attempt in results, outbox while disconnected). */
async function sdkDevice(id: string): Promise<void> {
  const d = new DeviceClient({ url, key, id, name: `chaos ${id}`, capacity: 1 }).onTask(async (ctx) => {
    const record: Execution = {
      task_id: ctx.task.task_id,
      device: id,
      attempt: ctx.task.attempt,
      start: Date.now(),
      end: null,
    };
    executions.push(record);
    await new Promise<void>((done) => {
      const timer = setTimeout(done, TASK_MS);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          record.cancelled = true;
          done();
        },
        { once: true },
      );
    });
    record.end = Date.now();
    return { ok: true };
  });
  d.on('disconnected', (reason: string) => countDisconnect(reason));
  d.socket.on('connect_error', () => connectErrors++);
  d.socket.on('server_shutdown', onShutdown(id));
  d.socket.on('register_success', () => registrations++);
  d.socket.on('error', countHubError);
  closers.push(() => d.close());
  await d.connect();
}

async function main(): Promise<void> {
  const n = Number(count);
  if (!url || !Number.isInteger(n) || n < 1 || !prefix)
    throw new Error('usage: chaos-fleet <hubUrl> <count> <prefix> <taskMs> [key] [--sdk]');
  await Promise.all(Array.from({ length: n }, (_, i) => (sdk ? sdkDevice : rawDevice)(`${prefix}-${i}`)));
  process.send?.({ type: 'ready', count: n, mode: sdk ? 'sdk' : 'raw' });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'report') {
    process.send?.({
      type: 'executions',
      executions,
      disconnects,
      connect_errors: connectErrors,
      server_shutdowns: serverShutdowns,
      registrations,
      hub_errors: hubErrors,
    });
  } else if (m.type === 'stop') {
    closers.forEach((close) => close());
    process.exit(0);
  }
});
// The bench going away (even by SIGKILL) closes the IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
