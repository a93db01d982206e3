import type { NextFunction, Request, Response } from 'express';
import { AppError, ErrorCode } from './errors.js';

/** Media types the JSON body parser reads (and the only bodies the API takes). */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * A body in another media type (text/plain, a form) is refused with 415 before routing: left
 * alone the parser skips it and the route would blame the missing fields with a 400. Requests
 * without a body, or without a Content-Type, pass (the parser and validation judge those).
 */
export function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const length = Number(req.headers['content-length'] ?? 0);
  const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || !req.headers['content-type'] || req.is(JSON_TYPES)) return next();
  next(
    new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `Content-Type ${req.headers['content-type']} is not JSON`, {
      field: 'Content-Type',
    }),
  );
}
