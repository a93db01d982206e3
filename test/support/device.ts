import { io, type Socket } from 'socket.io-client';

/** A real socket.io-client device for tests: collects what the hub sends, awaits events. */
export class TestDevice {
  readonly socket: Socket;
  readonly received: { event: string; data: Record<string, unknown> }[] = [];
  private waiters: {
    event: string;
    match: (d: Record<string, unknown>) => boolean;
    resolve: (d: Record<string, unknown>) => void;
  }[] = [];

  /** `opts.auth`: more handshake fields (e.g. `tenant_id` for a global admin acting for one tenant). */
  constructor(url: string, key?: string, opts: { reconnection?: boolean; auth?: Record<string, string> } = {}) {
    this.socket = io(url, {
      transports: ['websocket'],
      auth: { ...(key ? { token: key } : {}), ...opts.auth },
      reconnection: opts.reconnection ?? false,
      forceNew: true,
    });
    this.socket.onAny((event: string, data: Record<string, unknown>) => {
      this.received.push({ event, data });
      this.waiters = this.waiters.filter((w) => {
        if (w.event === event && w.match(data)) {
          w.resolve(data);
          return false;
        }
        return true;
      });
    });
  }

  /** Resolves with the first matching event, including one already received. */
  next(
    event: string,
    match: (d: Record<string, unknown>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const seen = this.received.find((r) => r.event === event && match(r.data));
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen.data);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
      timer.unref(); // a waiter that lost a race must not keep the test process alive
      this.waiters.push({
        event,
        match,
        resolve: (d) => {
          clearTimeout(timer);
          const i = this.received.findIndex((r) => r.data === d);
          if (i >= 0) this.received.splice(i, 1);
          resolve(d);
        },
      });
    });
  }

  /** Emits and waits for the ack. */
  request(event: string, data: unknown, timeoutMs = 5000): Promise<Record<string, unknown>> {
    return this.socket.timeout(timeoutMs).emitWithAck(event, data) as Promise<Record<string, unknown>>;
  }

  async register(id: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.socket.emit('device_register', { device_id: id, device_name: `device ${id}`, ...extra });
    return this.next('register_success');
  }

  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  close(): void {
    this.socket.disconnect();
  }
}
