import type { LoggerService } from '@nestjs/common';
import type { RequestHandler } from 'express';
import { type DestinationStream, type LoggerOptions, pino, type Logger as Pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { type CallStore, currentCall } from '../database/tenant-context.js';
import { clientAddress } from '../modules/edge/client-address.js';
import { traceIdOf } from './tracing/traceparent.js';

/** LOG_FORMAT (src/config/app-config.ts validates it). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/** LOG_FORMAT: `auto` is human lines on a terminal and JSON everywhere else (pipes, files, CI, tests). */
export function prettyLogs(format: LogFormat, isTTY: boolean | undefined): boolean {
  return format === 'pretty' || (format === 'auto' && isTTY === true);
}

export interface PinoOptions {
  format?: LogFormat;
  /** Whether stdout is a terminal (for `auto`); default process.stdout.isTTY. */
  isTTY?: boolean;
  /** Where lines go; default stdout, written synchronously. */
  destination?: DestinationStream;
}

export function createPino(level: string, options: PinoOptions = {}): Pino {
  const isTTY = options.isTTY ?? process.stdout.isTTY;
  // Synchronous: the last lines before an exit or a crash are written, not queued.
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  const config: LoggerOptions = {
    level,
    base: { service: 'taskhub' },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: callOfLine,
    mixinMergeStrategy: withCall,
  };
  return pino(config, prettyLogs(options.format ?? 'auto', isTTY) ? prettyDestination(out, isTTY === true) : out);
}

/**
 * Human lines (`[12:00:01.123] WARN: [Context] message`, the other fields indented below), made in the
 * logging call and written to `out` at once: pino-pretty's formatter without its stream or
 * worker thread, so nothing is left in a buffer when the process exits.
 */
function prettyDestination(out: DestinationStream, colorize: boolean): DestinationStream {
  const pretty = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'service,context',
    messageFormat: '{if context}[{context}] {end}{msg}',
  });
  return { write: (line: string) => void out.write(pretty(line)) };
}

/** What the mixin hands to withCall outside any call (a constant: no allocation per line). */
const NO_CALL: Partial<CallStore> = Object.freeze({});

/** pino's mixin: the open call (request or socket message), read from the hub's async-local store. */
const callOfLine = (): object => currentCall() ?? NO_CALL;

/**
 * Puts `req_id` (and `trace_id`, the 32-hex trace id of the call's traceparent) first on a line
 * written inside a call; a line outside one (background work, or a store without an id) is
 * passed through untouched. The line's own fields win, as with pino's default strategy.
 */
function withCall(line: object, call: object): object {
  const { requestId, traceparent } = call as Partial<CallStore>;
  if (requestId === undefined) return line;
  return traceparent === undefined
    ? { req_id: requestId, ...line }
    : { req_id: requestId, trace_id: traceIdOf(traceparent), ...line };
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
 * warning and a 5xx an error at any level, with the request id (`req_id`, and `trace_id`), route, client address
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
          // The same names as every other line of the request (the mixin's), set here because
          // `finish` may fire outside the request's call store.
          req_id: req.requestId,
          ...(req.traceparent ? { trace_id: traceIdOf(req.traceparent) } : {}),
          req: {
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
