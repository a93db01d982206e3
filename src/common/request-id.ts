import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { type CallStore, currentTenantSetting } from '../database/tenant-context.js';

const SAFE_ID = /^[\w.:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

/**
 * Takes the caller's X-Request-Id when it is sane, otherwise mints one; echoes it on every response.
 * (The W3C context, `req.traceparent`, is the tracing middleware's: src/common/tracing/http-tracing.ts.)
 */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const sent = req.headers['x-request-id'];
  req.requestId = typeof sent === 'string' && SAFE_ID.test(sent) ? sent : randomUUID();
  res.setHeader('X-Request-Id', req.requestId);
  next();
}

/**
 * The call store one inbound socket message is handled in (runAsCall): its id, and the tenant
 * setting the handler already ran under (none: the system, '*'), so the store changes what the
 * logs say and nothing about which rows the handler may touch. The handlers narrow it to the
 * connection's tenant themselves (runWithTenantSetting), as before, and keep the id.
 *
 * Message ids are `<connection id>:<n>`, n counting that connection's inbound messages from 1:
 * a string join, no randomness, unique as long as the connection id is, and never a value the
 * client chose.
 */
export function messageCall(requestId: string, traceparent?: string): CallStore {
  return { setting: currentTenantSetting(), requestId, traceparent };
}
