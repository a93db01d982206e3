// A separate process holding the fairness benchmark's devices (bench/fairness.ts, W11): plain
// socket.io-client devices registered with a global admin key and `shared: true`, each running a
// task for `taskMs` (a timer) and then sending `task_result`. Every task is reported to the parent
// over IPC with the times it arrived and its result was acknowledged, on a clock both processes
// share (`performance.timeOrigin + performance.now()`, checked by the parent with pings).
//   node dist/bench/lib/shared-fleet.js <hubUrl> <key> <count> <capacity> <taskMs> <prefix> <shared 1|0>
import { io, type Socket } from 'socket.io-client';

/** One task as the fleet saw it; sent to the parent in batches. */
export interface FleetRecord {
  /** `task_type` as submitted (the benchmark marks the tenant and phase in it). */
  type: string;
  /** `data.k`, the submitter's own key for the task (null when absent). */
  k: string | null;
  task_id: string;
  device: number;
  /** Shared clock (ms): the assignment arrived. */
  got: number;
  /** Shared clock (ms): the hub acknowledged its `task_result` (or refused it: `ok` false). */
  done: number;
  ok: boolean;
}

export type FleetMessage =
  | { type: 'ready'; devices: number; registered: Record<string, unknown>[] }
  | { type: 'failed'; error: string }
  | { type: 'records'; records: FleetRecord[] }
  | { type: 'pong'; id: number; now: number }
  | { type: 'stats'; duplicates: number; refused: number; errors: string[] };

export type ParentMessage = { type: 'stop' } | { type: 'ping'; id: number } | { type: 'stats' };

/** The clock both processes read: wall-clock based, sub-millisecond. */
export const sharedNow = (): number => performance.timeOrigin + performance.now();

interface Assignment {
  task_id: string;
  task_type?: string;
  attempt?: number;
  data?: unknown;
  payload?: unknown;
}

function main(): void {
  const [url, key, count, capacity, taskMs, prefix, shared] = process.argv.slice(2);
  const work = Number(taskMs);
  const sockets: Socket[] = [];
  const seen = new Set<string>();
  const errors: string[] = [];
  let duplicates = 0;
  let refused = 0;
  let pending: FleetRecord[] = [];
  let flushQueued = false;

  const send = (m: FleetMessage): void => {
    process.send?.(m);
  };
  // Batched, but never held back longer than the current turn of the event loop.
  const flush = (): void => {
    flushQueued = false;
    if (pending.length === 0) return;
    send({ type: 'records', records: pending });
    pending = [];
  };
  const record = (r: FleetRecord): void => {
    pending.push(r);
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  };
  const note = (e: string): void => {
    if (errors.length < 20) errors.push(e);
  };

  const registered: Record<string, unknown>[] = [];
  const connectOne = (i: number): Promise<void> =>
    new Promise((ok, fail) => {
      const s = io(url, {
        transports: ['websocket'],
        auth: { token: key },
        forceNew: true,
        reconnection: true,
        reconnectionDelay: 250,
      });
      sockets.push(s);
      let beat: NodeJS.Timeout | undefined;
      let first = true;
      s.on('connect', () => {
        const register: Record<string, unknown> = {
          device_id: `${prefix}-${i}`,
          capacity: Number(capacity),
          acks: true,
        };
        if (shared === '1') register.shared = true;
        s.emit('device_register', register);
      });
      s.on('register_success', (info: Record<string, unknown>) => {
        clearInterval(beat);
        beat = setInterval(
          () => s.emit('heartbeat', { device_id: `${prefix}-${i}` }),
          Number(info.heartbeat_interval) || 10_000,
        );
        beat.unref();
        if (first) {
          first = false;
          registered.push(info);
          ok();
        }
      });
      s.on('error', (e: unknown) => {
        const text = JSON.stringify(e);
        note(text);
        if (first) fail(new Error(`device ${prefix}-${i}: ${text}`));
      });
      s.on('connect_error', (e: Error) => {
        if (first) fail(e);
      });
      s.on('disconnect', (reason: string) => note(`device ${prefix}-${i} disconnected: ${reason}`));
      const onTask = (task: Assignment, ack?: (a: unknown) => void): void => {
        const got = sharedNow();
        if (typeof ack === 'function') ack({ received: true, task_id: task.task_id, attempt: task.attempt });
        if (seen.has(task.task_id)) duplicates++; // delivered again (same or a later attempt)
        seen.add(task.task_id);
        const body = (task.data ?? task.payload) as { k?: unknown } | null | undefined;
        const k = typeof body?.k === 'string' ? body.k : null;
        const type = task.task_type ?? '';
        setTimeout(() => {
          s.timeout(30_000).emit(
            'task_result',
            { task_id: task.task_id, attempt: task.attempt, success: true, result: { ok: true } },
            (err: Error | null, answer?: { success?: boolean }) => {
              const ok = !err && answer?.success === true;
              if (!ok) {
                refused++;
                note(
                  err
                    ? `task_result ${task.task_id}: ${err.message}`
                    : `task_result refused: ${JSON.stringify(answer)}`,
                );
              }
              record({ type, k, task_id: task.task_id, device: i, got, done: sharedNow(), ok });
            },
          );
        }, work);
      };
      s.on('new_task', onTask);
      s.on('task_assign', onTask);
    });

  process.on('message', (m: ParentMessage) => {
    if (m.type === 'ping') send({ type: 'pong', id: m.id, now: sharedNow() });
    else if (m.type === 'stats') send({ type: 'stats', duplicates, refused, errors });
    else if (m.type === 'stop') {
      flush();
      sockets.forEach((s) => s.disconnect());
      process.exit(0);
    }
  });

  Promise.all(Array.from({ length: Number(count) }, (_, i) => connectOne(i))).then(
    () => send({ type: 'ready', devices: sockets.length, registered }),
    (e: unknown) => {
      send({ type: 'failed', error: e instanceof Error ? e.message : String(e) });
      sockets.forEach((s) => s.disconnect());
      setTimeout(() => process.exit(1), 100);
    },
  );
}

// Only as a child process (forked by bench/fairness.ts): importing it for its types runs nothing.
if (process.send && process.argv[1]?.endsWith('shared-fleet.js')) main();
