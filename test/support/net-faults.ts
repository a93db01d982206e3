// Raw `node:net` clients for the edge's fault tests (test/e2e/edge-faults.e2e-spec.ts): they
// send exactly the bytes a test names, stop anywhere, reset the TCP connection (RST, as Python's
// websocket-client does on a refused handshake), trickle bytes, or stop reading. HTTP heads,
// WebSocket frames and Engine.IO packets are written and parsed here, nothing more.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** How a connection ended, seen from the client. */
export type Ending = 'end' | 'reset' | 'error' | 'destroyed';

export interface HttpHead {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  /** Bytes of the head, CRLFCRLF included. */
  length: number;
}

/** Polls `check` until it returns a value other than undefined, or throws `what` at the deadline. */
async function until<T>(
  what: string,
  ms: number,
  check: () => T | undefined,
  wake: (f: () => void) => void,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      wake(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * One TCP connection: every byte it received is kept, and how it ended. `reset()` ends it with
 * an RST (SO_LINGER 0) instead of a FIN.
 */
export class RawClient {
  private chunks: Buffer[] = [];
  private size = 0;
  private flat: Buffer | null = null;
  /** Frames parsed so far, the chunks they came from, and an incomplete tail. */
  private parsed: WsFrame[] = [];
  private parsedChunks = -1;
  private frameRest: Buffer = Buffer.alloc(0);
  private closeFrame?: WsFrame;
  private headCache?: HttpHead;
  private waiters: (() => void)[] = [];
  /** How the connection ended (undefined while it is open). */
  ending?: Ending;
  endedAt?: number;
  readonly openedAt = Date.now();

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      this.flat = null;
      this.wake();
    });
    socket.on('end', () => this.finish('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => this.finish(e.code === 'ECONNRESET' ? 'reset' : 'error'));
    socket.on('close', () => this.finish('destroyed'));
  }

  /** Connects to the hub at `url` (http://host:port), from `localAddress` when given (127.0.0.x are all local). */
  static open(url: string, localAddress?: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), localAddress });
      socket.setNoDelay(true);
      const client = new RawClient(socket);
      socket.once('connect', () => resolve(client));
      socket.once('error', reject);
    });
  }

  /** `n` connections, `batch` at a time (the listen backlog is finite). */
  static async openMany(url: string, n: number, localAddress?: string, batch = 200): Promise<RawClient[]> {
    const all: RawClient[] = [];
    for (let i = 0; i < n; i += batch)
      all.push(
        ...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => RawClient.open(url, localAddress)))),
      );
    return all;
  }

  private finish(how: Ending): void {
    if (this.ending === undefined) {
      this.ending = how;
      this.endedAt = Date.now();
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  get open(): boolean {
    return this.ending === undefined;
  }

  /** Everything received so far. */
  get bytes(): Buffer {
    this.flat ??= Buffer.concat(this.chunks, this.size);
    return this.flat;
  }

  get received(): number {
    return this.size;
  }

  /** Writes unless the connection is gone (a late write to a closed socket is not an error here). */
  write(data: string | Buffer): void {
    if (this.open && this.socket.writable) this.socket.write(data);
  }

  /** Sends an RST and destroys the socket. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
    this.finish('destroyed');
  }

  /** Closes with a FIN, then destroys. */
  close(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.finish('destroyed');
  }

  /** Stops reading (the kernel buffers fill, then the peer's). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Waits until `check` (called on every change) returns a value. */
  waitFor<T>(what: string, ms: number, check: (c: RawClient) => T | undefined): Promise<T> {
    return until(
      what,
      ms,
      () => check(this),
      (f) => this.waiters.push(f),
    );
  }

  /** Waits until the peer ends the connection; false when it is still open after `ms`. */
  async ended(ms: number): Promise<boolean> {
    return this.waitFor('the connection ends', ms, (c) => (c.open ? undefined : true)).catch(() => false);
  }

  /** The HTTP answer's head once it is complete, or undefined. */
  head(): HttpHead | undefined {
    this.headCache ??= parseHead(this.bytes);
    return this.headCache;
  }

  /** Waits for the answer's head; throws when the connection ends without one or after `ms`. */
  readHead(ms = 5000): Promise<HttpHead> {
    return this.waitFor('an HTTP answer', ms, (c) => {
      const h = c.head();
      if (h) return h;
      if (!c.open) throw new Error(`connection ended (${c.ending}) before an HTTP answer; got ${c.received} bytes`);
      return undefined;
    });
  }

  /** The body after the head (as far as it has arrived). */
  body(): Buffer {
    const h = this.head();
    return h ? this.bytes.subarray(h.length) : Buffer.alloc(0);
  }

  /** Waits for the first bytes of the answer (its status line, at least) and returns the status. */
  readStatus(ms = 5000): Promise<number> {
    return this.waitFor('a status line', ms, (c) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(c.bytes.subarray(0, 16).toString('latin1'));
      if (m) return Number(m[1]);
      if (!c.open) throw new Error(`connection ended (${c.ending}) before a status line`);
      return undefined;
    });
  }

  /** WebSocket frames the server sent after its 101 (complete ones only; parsed as they arrive). */
  frames(): WsFrame[] {
    if (this.parsedChunks < 0) {
      const h = this.head();
      if (!h) return this.parsed;
      this.frameRest = this.bytes.subarray(h.length);
      this.parsedChunks = this.chunks.length;
    } else if (this.parsedChunks < this.chunks.length) {
      this.frameRest = Buffer.concat([this.frameRest, ...this.chunks.slice(this.parsedChunks)]);
      this.parsedChunks = this.chunks.length;
    } else return this.parsed;
    const { frames, rest } = parseFrames(this.frameRest);
    this.frameRest = rest;
    for (const f of frames) {
      this.parsed.push(f);
      if (f.opcode === OPCODE.close) this.closeFrame ??= f;
    }
    return this.parsed;
  }

  /** The close frame the server sent, if one has arrived. */
  closed(): { code: number; reason: string } | undefined {
    this.frames();
    return this.closeFrame ? closeOf(this.closeFrame) : undefined;
  }

  /** Waits for the first server frame after the 101 that matches. */
  frame(match: (f: WsFrame) => boolean = () => true, ms = 5000): Promise<WsFrame> {
    let seen = 0;
    return this.waitFor('a WebSocket frame', ms, (c) => {
      const all = c.frames();
      for (; seen < all.length; seen++) if (match(all[seen])) return all[seen];
      if (!c.open) throw new Error(`connection ended (${c.ending}) before a matching frame`);
      return undefined;
    });
  }

  /** Sends one masked client frame. */
  sendFrame(payload: string | Buffer, opcode = OPCODE.text): void {
    this.write(encodeFrame(payload, opcode));
  }
}

/** Parses an HTTP/1.1 answer head, or undefined while it is incomplete. */
export function parseHead(buf: Buffer): HttpHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP answer: ${lines[0].slice(0, 80)}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(m[1]), statusText: m[2], headers, length: end + 4 };
}

// --- requests ------------------------------------------------------------------------------

/** An HTTP/1.1 request (no body unless given; Content-Length set from it unless headers say otherwise). */
export function httpRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Buffer {
  const all: Record<string, string> = { Host: 'hub.test', ...headers };
  if (body !== undefined && !Object.keys(all).some((k) => k.toLowerCase() === 'content-length'))
    all['Content-Length'] = String(Buffer.byteLength(body));
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body === undefined ? Buffer.alloc(0) : Buffer.from(body)]);
}

/** A WebSocket upgrade request for `path` (RFC 6455 headers, a fresh key). */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): Buffer {
  return httpRequest('GET', path, {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  });
}

// --- WebSocket frames ----------------------------------------------------------------------

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A client frame (masked, as RFC 6455 requires of clients). */
export function encodeFrame(payload: string | Buffer, opcode: number = OPCODE.text, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = data.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else if (len < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

/** Server frames (unmasked) in `buf`; `rest` is an incomplete tail. */
export function parseFrames(buf: Buffer): { frames: WsFrame[]; rest: Buffer } {
  const frames: WsFrame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at];
    const b1 = buf[at + 1];
    let len = b1 & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - off < 2) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (buf.length - off < 8) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskAt = off;
    if (masked) off += 4;
    if (buf.length - off < len) break;
    let payload = buf.subarray(off, off + len);
    if (masked) {
      const mask = buf.subarray(maskAt, maskAt + 4);
      payload = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]));
    }
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
    at = off + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** A close frame's code and reason. */
export function closeOf(f: WsFrame): { code: number; reason: string } {
  return f.payload.length >= 2
    ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() }
    : { code: 1005, reason: '' };
}

// --- Engine.IO / Socket.IO over a raw WebSocket ---------------------------------------------

/** The WebSocket transport's path of Engine.IO 4 (Socket.IO 4). */
export const SOCKET_IO_WS_PATH = '/socket.io/?EIO=4&transport=websocket';

/** Socket.IO packets as Engine.IO `message` text frames (`4` + the Socket.IO packet). */
export const sio = {
  connect: (nsp: string, auth: Record<string, unknown>): string =>
    `40${nsp === '/' ? '' : `${nsp},`}${JSON.stringify(auth)}`,
  event: (nsp: string, args: unknown[], ackId?: number): string =>
    `42${nsp === '/' ? '' : `${nsp},`}${ackId ?? ''}${JSON.stringify(args)}`,
};

// --- slow peers ----------------------------------------------------------------------------

/**
 * Writes `next()` every `everyMs` until the connection ends or `stop()` is called (a
 * slowloris client): headers one line at a time, a body a few bytes at a time.
 */
export function trickle(client: RawClient, everyMs: number, next: (i: number) => string | Buffer): () => void {
  let i = 0;
  const timer = setInterval(() => {
    if (!client.open) return clearInterval(timer);
    client.write(next(i++));
  }, everyMs);
  return () => clearInterval(timer);
}

/** The first flight of a TLS client (its ClientHello), as a browser would send to an https:// URL. */
export async function tlsClientHello(): Promise<Buffer> {
  const server = createServer();
  const first = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) =>
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      }),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const tls = tlsConnect({ host: '127.0.0.1', port, servername: 'hub.example.com', rejectUnauthorized: false });
  tls.on('error', () => undefined);
  try {
    return await first;
  } finally {
    tls.destroy();
    server.close();
  }
}
