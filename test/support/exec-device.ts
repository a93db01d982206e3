import { TestDevice } from './device.js';

/** One task's run on a device, by the device's own clock (Date.now()). */
export interface Run {
  task_id: string;
  device: string;
  start: number;
  end: number;
}

/**
 * A Socket.IO device that runs what it is sent: it acknowledges each task, notes when it
 * started, "works" `runMs`, then notes the end and reports the result. Its log is what the
 * concurrency suites measure (never the hub's own view).
 */
export class ExecDevice {
  readonly log: Run[] = [];
  private constructor(readonly device: TestDevice) {}

  static async connect(
    url: string,
    key: string | undefined,
    id: string,
    runMs: number,
    capacity = 1,
  ): Promise<ExecDevice> {
    const d = new ExecDevice(new TestDevice(url, key || undefined));
    d.device.socket.on('new_task', (m: { task_id: string; attempt: number }, ack?: (a: unknown) => void) => {
      if (typeof ack === 'function') ack({ received: true, task_id: m.task_id, attempt: m.attempt });
      const start = Date.now();
      setTimeout(() => {
        d.log.push({ task_id: m.task_id, device: id, start, end: Date.now() });
        if (d.device.socket.connected)
          d.device.socket.emit('task_result', { task_id: m.task_id, result: { success: true } });
      }, runMs);
    });
    await d.device.register(id, { capacity, tags: [] });
    return d;
  }

  close(): void {
    this.device.close();
  }
}

/** The most runs of `ids` that overlapped at any instant (an end at t frees before a start at t). */
export function maxOverlap(runs: Run[], ids: Set<string>): number {
  const edges = runs
    .filter((r) => ids.has(r.task_id))
    .flatMap((r) => [
      { at: r.start, d: 1 },
      { at: r.end, d: -1 },
    ])
    .sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) {
    now += e.d;
    most = Math.max(most, now);
  }
  return most;
}

/** The most starts of `ids` inside any window of `windowMs` (a start at s counts in [s, s + windowMs)). */
export function maxStartsInWindow(runs: Run[], ids: Set<string>, windowMs: number): number {
  const starts = runs
    .filter((r) => ids.has(r.task_id))
    .map((r) => r.start)
    .sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < starts.length; i++) {
    while (starts[i] - starts[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

export const allRuns = (devices: ExecDevice[]): Run[] => devices.flatMap((d) => d.log);

export const waitFor = async (what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
