import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Logger, type NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { Express } from 'express';
import type { AppConfig } from '../../config/app-config.js';
import { markProxyTrust, type ProxyTrust, trustProxySetting } from './client-address.js';
import type { EdgeMetrics } from './edge-metrics.js';

/** What Node answers a request it gave up on, by its error code (as its own default clientError handler does). */
const ANSWERS: Record<string, { status: string; reason: 'headers_timeout' | 'request_timeout' | 'bad_request' }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: '408 Request Timeout', reason: 'request_timeout' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: '408 Request Timeout', reason: 'headers_timeout' },
  HPE_HEADER_OVERFLOW: { status: '431 Request Header Fields Too Large', reason: 'bad_request' },
};

/**
 * The HTTP server with its waits bounded on purpose (docs/edge.md): a request whose headers
 * have not all arrived after HTTP_HEADERS_TIMEOUT_MS, or whose body has not after
 * HTTP_REQUEST_TIMEOUT_MS, is answered 408 and closed (Node's headersTimeout / requestTimeout;
 * answers, long polls and streams are not bounded by them). Node checks those deadlines every
 * `connectionsCheckingInterval`, which is only settable when the server is created (30 s by
 * default): hence an adapter that creates it. Malformed requests and resets are counted.
 */
export class EdgeExpressAdapter extends ExpressAdapter {
  private readonly edgeLogger = new Logger('Edge');

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: () => EdgeMetrics | undefined,
  ) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    // TRUST_PROXY: Express compiles it (req.ip); every connection carries the same function
    // for what Express never sees (raw upgrades, Engine.IO): clientAddress() reads it.
    const app = this.getInstance<Express>();
    app.set('trust proxy', trustProxySetting(this.config.TRUST_PROXY));
    const trust = app.get('trust proxy fn') as ProxyTrust;
    // HTTPS and Nest's connection tracking are not used by the hub (TLS ends at the balancer).
    if (options?.httpsOptions || options?.forceCloseConnections || options?.return503OnClosing) {
      super.initHttpServer(options);
      return markProxyTrust(this.getHttpServer() as Server, trust);
    }
    const headersTimeout = this.config.HTTP_HEADERS_TIMEOUT_MS;
    const requestTimeout = Math.max(this.config.HTTP_REQUEST_TIMEOUT_MS, headersTimeout);
    const server: Server = createServer(
      {
        headersTimeout,
        requestTimeout,
        connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(headersTimeout / 4))),
      },
      this.getInstance(),
    );
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    markProxyTrust(server, trust);
    this.setHttpServer(server);
  }

  /** Node's default answer, counted: 408 for timeouts, 400/431 for garbage; resets end quietly. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    let answer = (err.code && ANSWERS[err.code]) || { status: '400 Bad Request', reason: 'bad_request' as const };
    // Node names both deadlines ERR_HTTP_REQUEST_TIMEOUT: before the headers were complete
    // (no request object yet on the connection's parser) it was the headers timeout.
    if (
      answer.reason === 'request_timeout' &&
      !(socket as Duplex & { parser?: { incoming?: unknown } }).parser?.incoming
    )
      answer = { ...answer, reason: 'headers_timeout' };
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      this.metrics()?.socketErrors.inc({ stage: 'http' });
    } else {
      this.metrics()?.refuse('http', answer.reason);
    }
    this.edgeLogger.debug({ err }, 'HTTP client error');
    if (socket.writable && (socket as Socket).bytesWritten === 0)
      socket.write(`HTTP/1.1 ${answer.status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  }
}
