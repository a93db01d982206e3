import { EventEmitter } from 'node:events';
import { io, type Socket } from 'socket.io-client';

export interface DeviceClientOptions {
  /** Hub URL, e.g. http://127.0.0.1:3000 */
  url: string;
  /** A worker (or admin) API key; omit when the hub runs with AUTH_REQUIRED=false. */
  key?: string;
  id: string;
  name?: string;
  /** Tasks it runs at once (default 1). */
  capacity?: number;
  tags?: string[];
  /** Task types it takes; empty = any. */
  capabilities?: string[];
  info?: Record<string, unknown>;
  /** Register with `device_register` (seed 004, default) or `node_register` (Apex). */
  vocabulary?: 'device' | 'node';
}

/** A task as the hub hands it out (`new_task` or `task_assign`). */
export interface AssignedTask {
  task_id: string;
  task_type: string;
  attempt: number;
  prompt: string | null;
  data?: unknown;
  payload?: unknown;
  timeout: number;
  priority: string;
  tags: string[];
  created_at: string;
  metadata: Record<string, unknown>;
}

export interface TaskContext {
  task: AssignedTask;
  /** Aborted when the hub cancels the task (or the client closes). */
  signal: AbortSignal;
  progress(percent: number, message?: string): void;
  log(message: string, level?: 'debug' | 'info' | 'warn' | 'error'): void;
}

/** Resolve with the result; throw to fail the attempt (the hub's retry policy applies). */
export type TaskHandler = (ctx: TaskContext) => Promise<unknown>;

interface Report {
  event: 'task_progress' | 'task_result' | 'log';
  data: Record<string, unknown>;
}

/**
 * A typed device for taskhub on socket.io-client: registers (again after every reconnect),
 * heartbeats at the interval the hub asks for, runs tasks through `onTask` up to its
 * capacity, reports progress and results with the attempt number, stops on `cancel_task`,
 * and keeps reports made while disconnected until it is registered again.
 */
export class DeviceClient extends EventEmitter {
  readonly socket: Socket;
  private handler?: TaskHandler;
  private readonly running = new Map<string, { attempt: number; abort: AbortController }>();
  private readonly outbox: Report[] = [];
  private registered = false;
  private heartbeat?: NodeJS.Timeout;

  constructor(private readonly options: DeviceClientOptions) {
    super();
    this.socket = io(options.url, {
      autoConnect: false,
      transports: ['websocket'],
      auth: options.key ? { token: options.key } : {},
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
    });
    this.socket.on('connect', () => this.register());
    this.socket.on('disconnect', (reason) => {
      this.registered = false;
      clearInterval(this.heartbeat);
      this.emit('disconnected', reason);
    });
    this.socket.on('register_success', (info: { heartbeat_interval?: number; held_tasks?: { task_id: string }[] }) => {
      this.registered = true;
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.socket.emit('heartbeat', this.idField()), info.heartbeat_interval ?? 10_000);
      this.heartbeat.unref();
      this.flush();
      this.emit('registered', info);
    });
    const onTask = (task: AssignedTask): void => this.run(task);
    this.socket.on('new_task', onTask);
    this.socket.on('task_assign', onTask);
    this.socket.on('cancel_task', (m: { task_id: string }) => {
      this.running.get(m.task_id)?.abort.abort(new Error('cancelled by the hub'));
      this.emit('cancelled', m.task_id);
    });
    this.socket.on('error', (e: unknown) => this.emit('hub-error', e));
  }

  onTask(handler: TaskHandler): this {
    this.handler = handler;
    return this;
  }

  /** Connects and resolves once registered. */
  connect(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const fail = (e: unknown): void => {
        this.off('registered', done);
        reject(e instanceof Error ? e : new Error(JSON.stringify(e)));
      };
      const done = (info: Record<string, unknown>): void => {
        this.off('hub-error', fail);
        resolve(info);
      };
      this.once('registered', done);
      this.once('hub-error', fail);
      this.socket.connect();
    });
  }

  get activeTasks(): string[] {
    return [...this.running.keys()];
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const { abort } of this.running.values()) abort.abort(new Error('client closed'));
    this.socket.disconnect();
  }

  private idField(): Record<string, string> {
    return this.options.vocabulary === 'node' ? { node_id: this.options.id } : { device_id: this.options.id };
  }

  private register(): void {
    const o = this.options;
    const common = { capacity: o.capacity ?? 1, tags: o.tags ?? [], capabilities: o.capabilities ?? [] };
    if (o.vocabulary === 'node') this.socket.emit('node_register', { node_id: o.id, name: o.name, info: o.info, ...common });
    else this.socket.emit('device_register', { device_id: o.id, device_name: o.name, device_info: o.info, ...common });
  }

  private send(report: Report): void {
    if (this.registered && this.socket.connected) this.socket.emit(report.event, report.data);
    else this.outbox.push(report);
  }

  private flush(): void {
    for (const report of this.outbox.splice(0)) this.socket.emit(report.event, report.data);
  }

  private run(task: AssignedTask): void {
    const current = this.running.get(task.task_id);
    if (current && current.attempt === task.attempt) return; // delivered twice
    current?.abort.abort(new Error('superseded by a newer attempt'));
    const abort = new AbortController();
    this.running.set(task.task_id, { attempt: task.attempt, abort });
    const base = { task_id: task.task_id, attempt: task.attempt };
    const ctx: TaskContext = {
      task,
      signal: abort.signal,
      progress: (progress, message) => this.send({ event: 'task_progress', data: { ...base, progress, message } }),
      log: (message, level = 'info') => this.send({ event: 'log', data: { ...base, message, level } }),
    };
    const handler = this.handler ?? (() => Promise.reject(new Error('no task handler registered')));
    handler(ctx).then(
      (result) => this.finish(task, abort, { ...base, success: true, result: result ?? null }),
      (error: unknown) => this.finish(task, abort, { ...base, success: false, error: error instanceof Error ? error.message : String(error) }),
    );
  }

  private finish(task: AssignedTask, abort: AbortController, data: Record<string, unknown>): void {
    if (this.running.get(task.task_id)?.abort === abort) this.running.delete(task.task_id);
    if (abort.signal.aborted) return; // cancelled or superseded: the hub no longer wants this attempt's result
    this.send({ event: 'task_result', data });
    this.emit('finished', task.task_id, data);
  }
}
