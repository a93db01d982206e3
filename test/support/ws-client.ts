import { WebSocket } from 'ws';

export interface Frame {
  data: Buffer;
  binary: boolean;
}

/**
 * A raw WebSocket client for the proxy tests: every frame is kept, and `next` waits for the
 * first unread frame that matches (events arrive as `{event, data}` JSON).
 */
export class WsClient {
  readonly frames: Frame[] = [];
  private read = 0;
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, binary) => {
      this.frames.push({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), binary });
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

  static open(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** The next frame (after those already taken) that matches, within `ms`. */
  async next(match: (f: Frame) => boolean = () => true, ms = 10_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = this.read; i < this.frames.length; i++) {
        if (match(this.frames[i])) {
          this.read = i + 1;
          return this.frames[i];
        }
      }
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) before a matching frame`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${ms} ms; got ${this.frames.map((f) => (f.binary ? `<${f.data.length} bytes>` : f.data.toString().slice(0, 200))).join(' | ')}`,
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

  /** The next `{event: name}` frame's `data`. */
  async event<T = Record<string, unknown>>(name: string, ms?: number): Promise<T> {
    const f = await this.next((f) => !f.binary && jsonOf(f)?.event === name, ms);
    return (jsonOf(f) as { data: T }).data;
  }

  /** The next text frame that is not a proxy event, parsed when JSON. */
  async message(ms?: number): Promise<unknown> {
    const f = await this.next((f) => !f.binary && !isEvent(f), ms);
    return jsonOf(f) ?? f.data.toString();
  }

  send(data: string | Buffer, binary = Buffer.isBuffer(data)): void {
    this.ws.send(data, { binary });
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

const PROXY_EVENTS = new Set(['connection_routed', 'service_switched', 'management_notification', 'error']);

export function jsonOf(f: Frame): Record<string, unknown> | null {
  try {
    const v = JSON.parse(f.data.toString()) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isEvent = (f: Frame): boolean => {
  const j = jsonOf(f);
  return typeof j?.event === 'string' && PROXY_EVENTS.has(j.event);
};
