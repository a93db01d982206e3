import type { io as ioFn, Socket } from 'socket.io-client';

/** The hub serves the Socket.IO client itself (copied from socket.io-client at build time). */
const CLIENT_URL = '/dashboard/assets/socket.io.esm.min.js';

export type Counts = Record<string, number>;

export interface LiveHandlers {
  /** Any task lifecycle event: `task_created`, `task_started`, … with its data. */
  task(type: string, data: Record<string, unknown>): void;
  node(type: string, data: Record<string, unknown>): void;
  /** Exact counts by state from the hub (get_status, metrics_update). */
  counts(counts: Counts): void;
  /** Connected again after a drop: everything is refreshed once. */
  reconnected(): void;
  connection(state: 'live' | 'connecting' | 'offline'): void;
  unauthorized(): void;
}

const TASK_EVENTS = [
  'task_created',
  'task_started',
  'task_progress',
  'task_completed',
  'task_failed',
  'task_cancelled',
];

/**
 * The /events namespace: every task's lifecycle and node changes are pushed; counts are asked
 * for with `get_status` when events say they changed (at most every 500 ms) and come with
 * `metrics_update`. Nothing here polls.
 */
export class Live {
  private socket?: Socket;
  private connectedOnce = false;

  constructor(
    private readonly key: string,
    private readonly on: LiveHandlers,
  ) {}

  async start(): Promise<void> {
    const { io } = (await import(CLIENT_URL)) as { io: typeof ioFn };
    this.on.connection('connecting');
    const socket = io('/events', { auth: { token: this.key }, transports: ['websocket', 'polling'] });
    this.socket = socket;
    socket.on('connect', () => {
      this.on.connection('live');
      socket.emit('subscribe_tasks', { all: true });
      socket.emit('subscribe_metrics', {});
      this.askCounts();
      if (this.connectedOnce) this.on.reconnected();
      this.connectedOnce = true;
    });
    socket.on('disconnect', () => this.on.connection('connecting'));
    socket.on('connect_error', () => this.on.connection('offline'));
    socket.on('error', (e: { code?: string }) => {
      if (e?.code === 'UNAUTHORIZED' || e?.code === 'FORBIDDEN') this.on.unauthorized();
    });
    socket.on('metrics_update', (s: { tasks?: Counts }) => s?.tasks && this.on.counts(s.tasks));
    for (const type of TASK_EVENTS) socket.on(type, (d: Record<string, unknown>) => this.on.task(type, d));
    socket.on('node_online', (d: Record<string, unknown>) => this.on.node('node_online', d));
    socket.on('node_offline', (d: Record<string, unknown>) => this.on.node('node_offline', d));
  }

  /** Exact counts, answered by the hub from the database. */
  askCounts(): void {
    this.socket?.emit('get_status', {}, (s: { success?: boolean; tasks?: Counts }) => {
      if (s?.success && s.tasks) this.on.counts(s.tasks);
    });
  }

  stop(): void {
    this.socket?.disconnect();
    this.socket = undefined;
  }
}
