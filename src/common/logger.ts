import type { LoggerService } from '@nestjs/common';
import type { RequestHandler } from 'express';
import { pino, type Logger as Pino } from 'pino';
import { clientAddress } from '../modules/edge/client-address.js';

export function createPino(level: string): Pino {
  return pino({ level, base: { service: 'taskhub' }, timestamp: pino.stdTimeFunctions.isoTime });
}

type HubLogSink = (level: 'warn' | 'error', context: string | undefined, message: string) => void;
let hubLogSink: HubLogSink | undefined;
let inSink = false;

/** Where the hub's own warnings and errors also go (the Apex log channel); undefined stops it. */
export function setHubLogSink(sink: HubLogSink | undefined): void {
  hubLogSink = sink;
}

/** Nest's logger interface over pino, so framework and app logs share one JSON stream. */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly pino: Pino) {}

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace', message: unknown, rest: unknown[]): void {
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    if ((level === 'warn' || level === 'error') && hubLogSink && !inSink) this.toSink(level, context, message, rest);
    if (message instanceof Error) {
      this.pino[level]({ context, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      const text = typeof rest[0] === 'string' && rest.length > 1 ? rest[0] : undefined;
      this.pino[level]({ context, ...(message as object) }, text);
    } else {
      this.pino[level]({ context }, String(message));
    }
  }

  /** A warning or error for the log channel; a failure there never logs (no loop). */
  private toSink(level: 'warn' | 'error', context: string | undefined, message: unknown, rest: unknown[]): void {
    inSink = true;
    try {
      const text =
        message instanceof Error
          ? message.message
          : typeof message === 'object' && message !== null
            ? typeof rest[0] === 'string' && rest.length > 1
              ? rest[0]
              : JSON.stringify(message)
            : String(message);
      hubLogSink?.(level, context, text);
    } catch {
      // The log channel is best effort.
    } finally {
      inSink = false;
    }
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
}

/**
 * Access log. A successful request is a debug line (at the default `info` it costs nothing:
 * under load a line per request with every header was a tenth of the hub's CPU); a 4xx is a
 * warning and a 5xx an error at any level, with the request id, route, client address
 * (clientAddress: X-Forwarded-For behind a TRUST_PROXY), status and duration.
 */
export function httpLogger(logger: Pino): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    // Read now: by `finish` the connection may be gone, and its peer address with it.
    const remoteAddress = clientAddress(req);
    res.once('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          req: {
            id: (req as unknown as { requestId?: string }).requestId,
            method: req.method,
            url: req.originalUrl,
            remote_address: remoteAddress,
          },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - started),
        },
        'request completed',
      );
    });
    next();
  };
}
