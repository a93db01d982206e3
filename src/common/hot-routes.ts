import {
  type ArgumentMetadata,
  type CanActivate,
  type ExceptionFilter,
  ForbiddenException,
  type PipeTransform,
  type Type,
} from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { NextFunction, Request, Response } from 'express';
import { envelope } from './envelope.js';

/** Validates a value as the app's validation pipe does for a `@Body()` / `@Query()` of that type. */
export type Validate = (value: unknown, metatype: Type, type?: ArgumentMetadata['type']) => Promise<unknown>;

/**
 * One of the hottest routes, served straight from Express (src/common/hot-routes.ts). The
 * controller method stays the route's one implementation, and its Nest route stays for
 * OpenAPI and the route table; this only takes the request first.
 */
export interface HotRoute {
  method: 'get' | 'post';
  /** An Express path, as Nest registers the route (e.g. `/api/v1/tasks`). */
  path: string;
  controller: Type;
  /** The controller method: its guards' metadata (roles, throttling) are read from it. */
  handler: string;
  /** The method's arguments, as its parameter decorators would give them (DTOs through `validate`). */
  args: (req: Request, res: Response, validate: Validate) => Promise<unknown[]>;
  /** The status set before the method runs (Nest's default: 201 for POST); the method may change it. */
  status: number;
}

/** What the app's own pipeline is made of: the same instances serve the hot routes. */
export interface HotRouteParts {
  /** The global guards, in the order Nest runs them. */
  guards: CanActivate[];
  pipe: PipeTransform;
  filter: ExceptionFilter;
  /** The controller instance (the app's, with its injected services). */
  instance: (controller: Type) => object;
}

/**
 * Why: a profile of W1a (issue 27) put ~40 % of the hub's CPU per submission in Nest's
 * per-request machinery around the handler — the router's walk of every registered route,
 * parameter factories, a pipe per parameter, the rxjs interceptor chain — not in the handler.
 * A hot route runs the same parts in the same order (the global guards, by instance: auth,
 * tenant binding, rate limits; the validation pipe; the controller method; the envelope the
 * global interceptor adds; the global exception filter for every error), so its contract
 * cannot drift from the Nest route's, minus that machinery. A route with its own guards,
 * pipes or interceptors is not a candidate.
 */
export function hotRouteHandler(
  route: HotRoute,
  parts: HotRouteParts,
): (req: Request, res: Response, next: NextFunction) => void {
  let bound: { instance: object; method: (...args: unknown[]) => unknown } | undefined;
  const validate: Validate = (value, metatype, type = 'body') => parts.pipe.transform(value, { type, metatype });
  return (req, res, next) => {
    if (!bound) {
      const instance = parts.instance(route.controller);
      const method = (instance as Record<string, (...args: unknown[]) => unknown>)[route.handler];
      bound = { instance, method };
    }
    const { instance, method } = bound;
    const host = new ExecutionContextHost([req, res, next], route.controller, method);
    const run = async (): Promise<void> => {
      for (const guard of parts.guards)
        if (!(await guard.canActivate(host))) throw new ForbiddenException('Forbidden resource');
      const args = await route.args(req, res, validate);
      res.status(route.status);
      const result = await method.apply(instance, args);
      if (!res.headersSent) res.json(envelope(result ?? null, req.requestId));
    };
    run().catch((e: unknown) => {
      try {
        parts.filter.catch(e, host);
      } catch (fatal) {
        next(fatal);
      }
    });
  };
}
