import { io, type Socket } from 'socket.io-client';

/**
 * Devices written the way seed 004 tells a user to write one (its JS example, or the
 * python-socketio client): socket.io-client with its default reconnection, `device_register`
 * on every `connect`, run each `new_task`, then `task_result {task_id, success: true, result}`.
 * No heartbeat events, no acks, no attempt numbers, nothing read from `register_success`.
 * Everything they do is recorded for the fault tests: every execution interval, every
 * (re)registration, disconnect reason, `error` and `server_shutdown` they got.
 */

/** One execution of a task on a device (both seed devices and SDK devices record these). */
export interface Run {
  device: string;
  taskId: string;
  attempt: number;
  start: number;
  /** When it stopped (finished or abandoned); undefined while it runs. */
  end?: number;
  outcome: 'running' | 'done' | 'abandoned';
}

export interface NewTask {
  task_id: string;
  attempt: number;
  task_type?: string;
  data?: Record<string, unknown> | null;
  [key: string]: unknown;
}

export interface SeedDeviceOptions {
  /** Hub URL (http://…). */
  url: string;
  id: string;
  name?: string;
  /** API key sent as `auth: {token}`; omit with AUTH_REQUIRED=false on the hub. */
  token?: string;
  /** How long a run takes, in ms (default 300); a function gets the task and how often this device has been handed it (1 = first). */
  taskMs?: number | ((task: NewTask, delivery: number) => number);
  /** Send one `task_progress` (10 %) when a run starts, as seed devices do (default false). */
  progress?: boolean;
  /** Drop runs in progress when the connection drops (a device whose app restarted): no result is sent for them. */
  abandonOnDisconnect?: boolean;
  /** socket.io-client transports; default theirs (polling, then upgrade), as the seed example uses. */
  transports?: ('polling' | 'websocket')[];
}

export class SeedDevice {
  readonly socket: Socket;
  readonly id: string;
  readonly runs: Run[] = [];
  /** Every `new_task` received, in order. */
  readonly deliveries: NewTask[] = [];
  /** `register_success` count: 1 after the first connect, +1 after each reconnect. */
  registrations = 0;
  readonly disconnects: { at: number; reason: string }[] = [];
  readonly errors: { at: number; data: Record<string, unknown> }[] = [];
  readonly shutdowns: Record<string, unknown>[] = [];
  /** Results emitted: task id → how many times. */
  readonly resultsSent = new Map<string, number>();
  private readonly timers = new Map<Run, NodeJS.Timeout>();
  private registeredWaiters: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: SeedDeviceOptions) {
    this.id = options.id;
    this.socket = io(options.url, {
      forceNew: true,
      ...(options.token ? { auth: { token: options.token } } : {}),
      ...(options.transports ? { transports: options.transports } : {}),
    });
    this.socket.on('connect', () => {
      this.socket.emit('device_register', {
        device_id: options.id,
        device_name: options.name ?? `seed device ${options.id}`,
      });
    });
    this.socket.on('register_success', () => {
      this.registrations++;
      const w = this.registeredWaiters;
      this.registeredWaiters = [];
      w.forEach((f) => f());
    });
    this.socket.on('disconnect', (reason: string) => {
      this.disconnects.push({ at: Date.now(), reason });
      if (options.abandonOnDisconnect) {
        for (const [run, timer] of this.timers) {
          clearTimeout(timer);
          run.end = Date.now();
          run.outcome = 'abandoned';
        }
        this.timers.clear();
      }
    });
    this.socket.on('error', (data: Record<string, unknown>) => this.errors.push({ at: Date.now(), data }));
    this.socket.on('server_shutdown', (data: Record<string, unknown>) => this.shutdowns.push(data));
    this.socket.on('new_task', (task: NewTask) => this.run(task));
  }

  /** Resolves once registered `count` times in total (default: at least once). */
  registered(count = 1, timeoutMs = 10_000): Promise<void> {
    if (this.registrations >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`device ${this.id}: registered ${this.registrations} times, waited for ${count}`)),
        timeoutMs,
      );
      const check = (): void => {
        if (this.registrations >= count) {
          clearTimeout(timer);
          resolve();
        } else this.registeredWaiters.push(check);
      };
      this.registeredWaiters.push(check);
    });
  }

  /** Runs in progress. */
  get active(): Run[] {
    return this.runs.filter((r) => r.outcome === 'running');
  }

  private run(task: NewTask): void {
    if (this.closed) return;
    this.deliveries.push(task);
    const delivery = this.deliveries.filter((d) => d.task_id === task.task_id).length;
    const ms =
      typeof this.options.taskMs === 'function' ? this.options.taskMs(task, delivery) : (this.options.taskMs ?? 300);
    const run: Run = {
      device: this.id,
      taskId: task.task_id,
      attempt: task.attempt,
      start: Date.now(),
      outcome: 'running',
    };
    this.runs.push(run);
    if (this.options.progress)
      this.socket.emit('task_progress', { task_id: task.task_id, progress: 10, message: 'started' });
    const timer = setTimeout(() => {
      this.timers.delete(run);
      run.end = Date.now();
      run.outcome = 'done';
      this.resultsSent.set(task.task_id, (this.resultsSent.get(task.task_id) ?? 0) + 1);
      // While disconnected socket.io-client buffers this emit and sends it on reconnect, as a JS seed device would.
      this.socket.emit('task_result', {
        task_id: task.task_id,
        success: true,
        result: { success: true, device: this.id, message: 'done', execution_time: ms / 1000 },
      });
    }, ms);
    this.timers.set(run, timer);
  }

  close(): void {
    this.closed = true;
    for (const [run, timer] of this.timers) {
      clearTimeout(timer);
      run.end = Date.now();
      run.outcome = 'abandoned';
    }
    this.timers.clear();
    this.socket.disconnect();
  }
}

/** A fleet of seed devices `<prefix>-1` … `<prefix>-n` on one hub URL. */
export class SeedFleet {
  private constructor(readonly devices: SeedDevice[]) {}

  /** Connects n devices and waits until each has registered once. */
  static async start(n: number, options: Omit<SeedDeviceOptions, 'id'> & { prefix?: string }): Promise<SeedFleet> {
    const prefix = options.prefix ?? 'seed';
    const fleet = new SeedFleet(
      Array.from({ length: n }, (_, i) => new SeedDevice({ ...options, id: `${prefix}-${i + 1}` })),
    );
    try {
      await Promise.all(fleet.devices.map((d) => d.registered(1)));
    } catch (e) {
      fleet.close();
      throw e;
    }
    return fleet;
  }

  get runs(): Run[] {
    return this.devices.flatMap((d) => d.runs);
  }

  /** Runs that finished (a result was sent). */
  get done(): Run[] {
    return this.runs.filter((r) => r.outcome === 'done');
  }

  close(): void {
    this.devices.forEach((d) => d.close());
  }
}

/** Pairs of executions of the same task on two different devices whose intervals overlap. */
export function concurrentDuplicates(runs: Run[], now = Date.now()): [Run, Run][] {
  const byTask = new Map<string, Run[]>();
  for (const r of runs) byTask.set(r.taskId, [...(byTask.get(r.taskId) ?? []), r]);
  const pairs: [Run, Run][] = [];
  for (const list of byTask.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i];
        const b = list[j];
        if (a.device === b.device) continue;
        if (a.start < (b.end ?? now) && b.start < (a.end ?? now)) pairs.push([a, b]);
      }
    }
  }
  return pairs;
}

/** Polls `fn` until it returns a truthy value; the last value is kept for the error message. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  ms: number,
  every = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`,
      );
    await new Promise((r) => setTimeout(r, every));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Submits `n` tasks over HTTP, a few at a time; the ids the hub acknowledged (201). A refused
 * submission is not an acknowledged task, so it is left out (and counted in `refused`).
 */
export async function submitTasks(
  hubUrl: string,
  n: number,
  body: (i: number) => Record<string, unknown>,
  key?: string,
): Promise<{ ids: string[]; refused: number }> {
  const ids: string[] = [];
  let refused = 0;
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, k) => i + k);
    const answers = await Promise.all(
      batch.map(async (k) => {
        const res = await fetch(`${hubUrl}/api/v1/tasks`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
          body: JSON.stringify(body(k)),
        });
        const json = (await res.json().catch(() => null)) as { data?: { task_id?: string } } | null;
        return res.status === 201 ? (json?.data?.task_id ?? null) : null;
      }),
    );
    for (const id of answers) {
      if (id) ids.push(id);
      else refused++;
    }
  }
  return { ids, refused };
}

export interface TaskRow {
  id: string;
  status: string;
  node_id: string | null;
  attempt: number;
}

/** The tasks' rows, read straight from PostgreSQL (not through the hub under test). */
export async function taskRows(
  db: { query: (sql: string, params: unknown[]) => Promise<{ rows: TaskRow[] }> },
  ids: string[],
): Promise<TaskRow[]> {
  const { rows } = await db.query('SELECT id, status, node_id, attempt FROM tasks WHERE id = ANY($1::uuid[])', [ids]);
  return rows;
}

/** Counts by status, e.g. `{completed: 38, dispatched: 2}`. */
export function byStatus(rows: TaskRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}

/** Polls until every task is `completed` or `ms` passed; the rows that are not completed then (empty = all done) and when the last one completed. */
export async function untilCompleted(
  db: Parameters<typeof taskRows>[0],
  ids: string[],
  ms: number,
): Promise<{ notCompleted: TaskRow[]; doneAt: number | null }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await taskRows(db, ids);
    const notCompleted = rows.filter((r) => r.status !== 'completed');
    const missing = ids.filter((id) => !rows.some((r) => r.id === id));
    const left = [...notCompleted, ...missing.map((id) => ({ id, status: 'missing', node_id: null, attempt: 0 }))];
    if (left.length === 0) return { notCompleted: [], doneAt: Date.now() };
    if (Date.now() > deadline) return { notCompleted: left, doneAt: null };
    await sleep(100);
  }
}
