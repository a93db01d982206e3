import WebSocket from 'ws';

export interface ApexFrame {
  type: string;
  id?: string | number;
  data: Record<string, unknown>;
}

/**
 * A plain `ws` client of the Apex channels (seed 001): `{type, data, id?}` JSON frames, every
 * one kept; `next` waits for the first unread frame that matches.
 */
export class ApexSocket {
  readonly frames: ApexFrame[] = [];
  private read = 0;
  private seq = 0;
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      this.frames.push(JSON.parse(raw.toString()) as ApexFrame);
      this.wake();
    });
    this.closedPromise = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
        this.wake();
      }),
    );
    ws.on('error', () => undefined);
  }

  /** Opens `url`; rejects with `HTTP <status>` when the upgrade is refused. */
  static open(url: string): Promise<ApexSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const s = new ApexSocket(ws);
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })),
        );
      });
      ws.once('error', reject);
    });
  }

  /** The status an upgrade to `url` is refused with (throws when it opens). */
  static async refusal(url: string): Promise<{ status: number; body: string }> {
    try {
      const s = await ApexSocket.open(url);
      s.close();
    } catch (e) {
      const err = e as { status?: number; body?: string };
      if (err.status) return { status: err.status, body: err.body ?? '' };
      throw e;
    }
    throw new Error(`${url} opened`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  async next(match: (f: ApexFrame) => boolean, ms = 10_000): Promise<ApexFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = this.read; i < this.frames.length; i++) {
        if (match(this.frames[i])) {
          this.read = i + 1;
          return this.frames[i];
        }
      }
      if (this.closed)
        throw new Error(
          `closed (${this.closed.code}) before a matching frame; got ${JSON.stringify(this.frames.slice(this.read))}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${ms} ms; unread: ${JSON.stringify(this.frames.slice(this.read)).slice(0, 2000)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next frame of this type (optionally also matching). */
  nextOf(type: string, match: (f: ApexFrame) => boolean = () => true, ms?: number): Promise<ApexFrame> {
    return this.next((f) => f.type === type && match(f), ms);
  }

  send(type: string, data?: unknown, id?: string | number): void {
    this.ws.send(JSON.stringify({ type, data, ...(id !== undefined ? { id } : {}) }));
  }

  raw(data: string | Buffer, binary = Buffer.isBuffer(data)): void {
    this.ws.send(data, { binary });
  }

  /** Sends with a fresh id and waits for the frame that answers that id. */
  async request(type: string, data?: unknown, ms?: number): Promise<ApexFrame> {
    const id = `r${++this.seq}`;
    this.send(type, data, id);
    return this.next((f) => f.id === id, ms);
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error('not closed in time')), ms)),
    );
    try {
      return await Promise.race([this.closedPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * An Apex node as a user would write it: reconnects 200 ms after any close and registers
 * again, acknowledges each assignment, and runs what it is told to run (the test finishes
 * each task by calling `finish`). Counts registrations and assignments per task.
 */
export class ReconnectingApexNode {
  socket?: ApexSocket;
  registrations = 0;
  readonly assignments: { task_id: string; attempt: number }[] = [];
  readonly closes: number[] = [];
  readonly shutdownNotices: Record<string, unknown>[] = [];
  private stopped = false;
  private registered?: () => void;

  constructor(
    private readonly url: () => string,
    readonly nodeId: string,
  ) {}

  /** Resolves once registered (again). */
  start(): Promise<void> {
    const done = new Promise<void>((ok) => (this.registered = ok));
    void this.connect();
    return done;
  }

  nextRegistration(): Promise<void> {
    return new Promise<void>((ok) => (this.registered = ok));
  }

  private async connect(): Promise<void> {
    while (!this.stopped) {
      try {
        const s = await ApexSocket.open(this.url());
        this.socket = s;
        s.ws.on('message', (raw) => this.onFrame(s, JSON.parse(raw.toString()) as ApexFrame));
        s.ws.on('close', (code) => {
          this.closes.push(code);
          if (!this.stopped) setTimeout(() => void this.connect(), 200);
        });
        s.send('node_register', { node_id: this.nodeId, name: this.nodeId, type: 'worker' }, 'reg');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private onFrame(s: ApexSocket, f: ApexFrame): void {
    if (f.type === 'register_success') {
      this.registrations++;
      this.registered?.();
    } else if (f.type === 'task_assign') {
      this.assignments.push({ task_id: String(f.data.task_id), attempt: Number(f.data.attempt) });
      s.send('ack', undefined, f.id);
    } else if (f.type === 'server_shutdown') {
      this.shutdownNotices.push(f.data);
    }
  }

  /** Reports the task done on the current connection; the hub's answer. */
  finish(taskId: string, attempt: number): Promise<ApexFrame> {
    return (this.socket as ApexSocket).request('task_result', {
      task_id: taskId,
      attempt,
      status: 'success',
      result: { by: this.nodeId },
    });
  }

  /**
   * Reports the task done as a real node does: when the answer is lost with the connection
   * (the hub died after committing, or before reading it), it reports again once registered
   * again. The hub answers a repeated report of an applied result with success.
   */
  async report(taskId: string, attempt: number, tries = 10): Promise<ApexFrame> {
    for (let i = 0; ; i++) {
      const registrations = this.registrations;
      try {
        return await this.finish(taskId, attempt);
      } catch (e) {
        if (this.stopped || i >= tries) throw e;
        const deadline = Date.now() + 10_000;
        while (this.registrations === registrations && !this.stopped && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
  }
}
