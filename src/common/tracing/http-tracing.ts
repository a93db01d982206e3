import type { NextFunction, Request, Response } from 'express';
import { clientAddress } from '../../modules/edge/client-address.js';
import { endWithError, SpanKind, startSpan, traceparentOf, tracingEnabled } from './tracer.js';
import { cleanTracestate, formatTraceparent, newTraceparent, parseTraceparent } from './traceparent.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The W3C context this request's work continues: its server span, else the caller's, else a new trace. */
    traceparent: string;
    tracestate: string | undefined;
  }
}

/**
 * W3C trace context on every request (docs/observability.md, "Traces"): a valid `traceparent`
 * (and its `tracestate`) is continued, anything else starts a new trace. With tracing on, the
 * request is a server span (HTTP semantic conventions), named by its route once routed; what
 * the request starts (a task, an upstream call) is its child. With tracing off, the caller's
 * context (or a new trace id) is only passed on: to the task, and to log lines as `trace_id`.
 */
export function httpTracing(req: Request, res: Response, next: NextFunction): void {
  const sent = req.headers.traceparent;
  const incoming = parseTraceparent(sent);
  req.tracestate = incoming ? cleanTracestate(req.headers.tracestate) : undefined;
  if (!tracingEnabled()) {
    req.traceparent = incoming ? formatTraceparent(incoming) : formatTraceparent(newTraceparent());
    next();
    return;
  }
  const span = startSpan(req.method, {
    parent: incoming ? (sent as string) : undefined,
    parentTracestate: req.tracestate,
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': req.method,
      'url.path': req.path,
      'url.scheme': req.protocol,
      'client.address': clientAddress(req),
      'user_agent.original': req.headers['user-agent'],
      'network.protocol.version': req.httpVersion,
    },
  })!;
  req.traceparent = traceparentOf(span);
  const ended = (): void => {
    res.off('finish', ended);
    res.off('close', ended);
    const route = (req.route as { path?: string } | undefined)?.path;
    if (route) {
      span.setAttribute('http.route', `${req.baseUrl}${route}`);
      span.updateName(`${req.method} ${req.baseUrl}${route}`);
    }
    span.setAttribute('taskhub.request_id', req.requestId);
    const status = res.statusCode;
    span.setAttribute('http.response.status_code', status);
    // A server span is an error for a 5xx, or when the answer never finished (the client went away).
    if (status >= 500) endWithError(span, String(status));
    else if (!res.writableFinished) endWithError(span, 'aborted', 'the connection closed before the answer was sent');
    else span.end();
  };
  res.once('finish', ended);
  res.once('close', ended);
  next();
}
