import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy to put in front of PostgreSQL, so a test or bench can take the database away
 * from a hub (cut) and give it back (restore) without stopping the server other clients use.
 */
export class TcpProxy {
  private server?: Server;
  /** Client socket -> its upstream socket, so cut() can tear down both ends. */
  private readonly pairs = new Map<Socket, Socket>();
  private refusing = false;

  constructor(private readonly target: { host: string; port: number }) {}

  start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok(this.port));
    });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Destroys every open connection and refuses new ones (accept then destroy at once) until restore(). */
  cut(): void {
    this.refusing = true;
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.refusing = false;
  }

  close(): Promise<void> {
    this.cut();
    const server = this.server;
    if (!server?.listening) return Promise.resolve();
    return new Promise((ok) => server.close(() => ok()));
  }

  private accept(client: Socket): void {
    // An ECONNRESET on either side must end only this pair, never the process.
    client.on('error', () => client.destroy());
    if (this.refusing) {
      // Accepting and closing at once is what a client sees when the server is gone:
      // the connect succeeds at the TCP level, then the connection ends before any reply.
      client.destroy();
      return;
    }
    const upstream = createConnection(this.target);
    upstream.on('error', () => upstream.destroy());
    this.pairs.set(client, upstream);
    // Half of a pair closing (either side) closes the other: a proxy must not keep a
    // connection alive that one end has given up on.
    const drop = (): void => {
      this.pairs.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', drop);
    upstream.once('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** The postgres URL `url` with its host and port pointing at a proxy on 127.0.0.1:`port`. */
export function proxiedUrl(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}
