import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * helmet's headers, computed once. helmet is a chain of a dozen middlewares that each set one
 * constant header; with these options nothing depends on the request, so the hub runs the chain
 * once at boot against a recording response and then sets the same headers in one step.
 */
export function securityHeaders(options: HelmetOptions): RequestHandler {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  let completed = false;
  helmet(options)({} as Request, recorder as unknown as Response, () => (completed = true));
  if (!completed) throw new Error('helmet did not complete synchronously: its headers cannot be precomputed');
  return (_req: Request, res: Response, next: NextFunction) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}
