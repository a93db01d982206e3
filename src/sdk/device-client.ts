import { EventEmitter } from 'node:events';
import { context, createTraceState, trace } from '@opentelemetry/api';
import { io, type Socket } from 'socket.io-client';
import { parseTraceparent } from '../common/tracing/traceparent.js';
import type {
  AssignmentAck,
  AssignmentMessage,
  CancelTaskMessage,
  ClientToServerEvents,
  LogLevel,
  LogPayload,
  RegisterSuccess,
  ServerToClientEvents,
  TaskProgressPayload,
  TaskReportAck,
  TaskResultPayload,
} from '../contracts/sockets/device.js';
import type { RefusedAck, SocketError } from '../contracts/sockets/error.js';

export type { AssignmentMessage, RegisterSuccess, SocketError };

/** The device channel as socket.io-client sees it: the hub's events in, ours out. */
export type DeviceSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

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

/** A task as the hub hands it out (`new_task` carries `data`, `task_assign` carries `payload`). */
export type AssignedTask = AssignmentMessage & { data?: unknown; payload?: unknown };

export interface TaskContext {
  task: AssignedTask;
  /**
   * The W3C context of this attempt's run (the hub's span of it), when the task has one. The
   * handler also runs inside it as the active OpenTelemetry context: with an OpenTelemetry SDK
   * registered in the device's process, the spans it starts are children of the hub's run span.
   */
  traceparent: string | undefined;
  /** Aborted when the hub cancels the task (or the client closes). */
  signal: AbortSignal;
  progress(percent: number, message?: string): void;
  log(message: string, level?: LogLevel): void;
}

/** Resolve with the result; throw to fail the attempt (the hub's retry policy applies). */
export type TaskHandler = (ctx: TaskContext) => Promise<unknown>;

type Report = { event: 'task_progress'; data: TaskProgressPayload } | { event: 'log'; data: LogPayload };

/** A result the hub has not acknowledged yet: kept, and sent again, until it does. */
interface PendingResult {
  attempt: number;
  data: TaskResultPayload;
  sending: boolean;
}

const RESULT_ACK_TIMEOUT_MS = 10_000;
const RESULT_RETRY_MS = 1000;

/** Answers after which a result is settled: applied, or refused for good (the hub moved on). */
const FINAL_REFUSALS = new Set(['STALE_ATTEMPT', 'CONFLICT', 'NOT_FOUND', 'VALIDATION_ERROR', 'NOT_REGISTERED']);

/**
 * A typed device for taskhub on socket.io-client: registers (again after every reconnect),
 * heartbeats at the interval the hub asks for, runs tasks through `onTask` up to its
 * capacity, reports progress and results with the attempt number, stops on `cancel_task`.
 * Delivery is acknowledged both ways: it acks every assignment (registering with
 * `acks: true`), and keeps each result until the hub acks it, sending it again after a
 * reconnect, so a hub restart or a database outage loses nothing. On re-register it tells
 * the hub which tasks it is still on (`running_tasks`); the hub sends it the others it holds.
 */
export class DeviceClient extends EventEmitter {
  readonly socket: DeviceSocket;
  private handler?: TaskHandler;
  private readonly running = new Map<string, { attempt: number; abort: AbortController }>();
  private readonly outbox: Report[] = [];
  private readonly results = new Map<string, PendingResult>();
  private registered = false;
  private closed = false;
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
    this.socket.on('register_success', (info) => {
      this.registered = true;
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(
        () => this.socket.emit('heartbeat', this.idField()),
        info.heartbeat_interval ?? 10_000,
      );
      this.heartbeat.unref();
      this.flush();
      this.emit('registered', info);
    });
    const onTask = (task: AssignedTask, ack?: (answer: AssignmentAck) => void): void => {
      if (typeof ack === 'function') ack({ received: true, task_id: task.task_id, attempt: task.attempt });
      this.run(task);
    };
    this.socket.on('new_task', onTask);
    this.socket.on('task_assign', onTask);
    this.socket.on('cancel_task', (m: CancelTaskMessage) => {
      const current = this.running.get(m.task_id);
      if (current && (m.attempt === undefined || m.attempt === null || m.attempt === current.attempt))
        current.abort.abort(new Error('cancelled by the hub'));
      const pending = this.results.get(m.task_id);
      if (pending && (m.attempt === undefined || m.attempt === null || m.attempt === pending.attempt))
        this.results.delete(m.task_id);
      this.emit('cancelled', m.task_id);
    });
    this.socket.on('error', (e: SocketError) => this.emit('hub-error', e));
  }

  onTask(handler: TaskHandler): this {
    this.handler = handler;
    return this;
  }

  /** Connects and resolves once registered. */
  connect(): Promise<RegisterSuccess> {
    return new Promise((resolve, reject) => {
      const fail = (e: unknown): void => {
        this.off('registered', done);
        reject(e instanceof Error ? e : new Error(JSON.stringify(e)));
      };
      const done = (info: RegisterSuccess): void => {
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

  /** Results sent but not yet acknowledged by the hub (kept across reconnects). */
  get unacknowledgedResults(): string[] {
    return [...this.results.keys()];
  }

  close(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const { abort } of this.running.values()) abort.abort(new Error('client closed'));
    this.socket.disconnect();
  }

  private idField(): { node_id: string } | { device_id: string } {
    return this.options.vocabulary === 'node' ? { node_id: this.options.id } : { device_id: this.options.id };
  }

  private register(): void {
    const o = this.options;
    // Still on: tasks running here, and finished ones whose result the hub has not acknowledged.
    const runningTasks = [
      ...[...this.running].map(([task_id, r]) => ({ task_id, attempt: r.attempt })),
      ...[...this.results]
        .filter(([id]) => !this.running.has(id))
        .map(([task_id, r]) => ({ task_id, attempt: r.attempt })),
    ];
    const common = {
      capacity: o.capacity ?? 1,
      tags: o.tags ?? [],
      capabilities: o.capabilities ?? [],
      acks: true,
      running_tasks: runningTasks,
    };
    if (o.vocabulary === 'node')
      this.socket.emit('node_register', { node_id: o.id, name: o.name, info: o.info, ...common });
    else this.socket.emit('device_register', { device_id: o.id, device_name: o.name, device_info: o.info, ...common });
  }

  private send(report: Report): void {
    if (this.registered && this.socket.connected) this.emitReport(report);
    else this.outbox.push(report);
  }

  private emitReport(r: Report): void {
    if (r.event === 'task_progress') this.socket.emit('task_progress', r.data);
    else this.socket.emit('log', r.data);
  }

  private flush(): void {
    for (const report of this.outbox.splice(0)) this.emitReport(report);
    for (const taskId of this.results.keys()) this.sendResult(taskId);
  }

  /** Sends a kept result and waits for the hub's ack; it stays kept until the hub settles it. */
  private sendResult(taskId: string): void {
    const pending = this.results.get(taskId);
    if (!pending || pending.sending || !this.registered || !this.socket.connected) return;
    pending.sending = true;
    this.socket
      .timeout(RESULT_ACK_TIMEOUT_MS)
      .emitWithAck('task_result', pending.data)
      .then(
        (answer: TaskReportAck | RefusedAck) => {
          pending.sending = false;
          const refusal = answer?.success === false ? answer.error.code : '';
          if (answer?.success || FINAL_REFUSALS.has(refusal)) {
            if (this.results.get(taskId) === pending) this.results.delete(taskId);
            this.emit(answer?.success ? 'result-acknowledged' : 'result-refused', taskId, answer);
            return;
          }
          this.retryResult(taskId); // e.g. SERVICE_UNAVAILABLE: the hub could not store it yet
        },
        () => {
          pending.sending = false; // no answer: lost with the connection, or the hub is slow
          this.retryResult(taskId);
        },
      );
  }

  private retryResult(taskId: string): void {
    if (this.closed) return;
    setTimeout(() => this.sendResult(taskId), RESULT_RETRY_MS).unref();
  }

  private run(task: AssignedTask): void {
    const current = this.running.get(task.task_id);
    if (current && current.attempt === task.attempt) return; // delivered twice
    const done = this.results.get(task.task_id);
    if (done && done.attempt === task.attempt) return this.sendResult(task.task_id); // finished already: the result is on its way
    current?.abort.abort(new Error('superseded by a newer attempt'));
    const abort = new AbortController();
    this.running.set(task.task_id, { attempt: task.attempt, abort });
    const base = { task_id: task.task_id, attempt: task.attempt };
    const ctx: TaskContext = {
      task,
      traceparent: task.traceparent,
      signal: abort.signal,
      progress: (progress, message) => this.send({ event: 'task_progress', data: { ...base, progress, message } }),
      log: (message, level = 'info') => this.send({ event: 'log', data: { ...base, message, level } }),
    };
    const handler = this.handler ?? (() => Promise.reject(new Error('no task handler registered')));
    withTaskContext(task, () => handler(ctx)).then(
      (result) => this.finish(task, abort, { ...base, success: true, result: result ?? null }),
      (error: unknown) =>
        this.finish(task, abort, {
          ...base,
          success: false,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  }

  private finish(task: AssignedTask, abort: AbortController, data: TaskResultPayload): void {
    if (this.running.get(task.task_id)?.abort === abort) this.running.delete(task.task_id);
    if (abort.signal.aborted) return; // cancelled or superseded: the hub no longer wants this attempt's result
    this.results.set(task.task_id, { attempt: task.attempt, data, sending: false });
    this.sendResult(task.task_id);
    this.emit('finished', task.task_id, data);
  }
}

/** Runs `fn` with the task's run span as the active OpenTelemetry context (a no-op without a registered context manager). */
function withTaskContext<T>(task: AssignedTask, fn: () => T): T {
  const parent = parseTraceparent(task.traceparent);
  if (!parent) return fn();
  const active = trace.setSpanContext(context.active(), {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.flags,
    isRemote: true,
    traceState: task.tracestate ? createTraceState(task.tracestate) : undefined,
  });
  return context.with(active, fn);
}
