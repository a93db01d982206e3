import { ForbiddenException, Logger, type Type, ValidationPipe } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import {
  ExecutionContextHost,
  FORBIDDEN_MESSAGE,
  GuardsConsumer,
  GuardsContextCreator,
  InterceptorsContextCreator,
  PipesContextCreator,
} from '@nestjs/core/internal';
import type { NestContainer } from '@nestjs/core/injector/container.js';
import { RouterExceptionFilters } from '@nestjs/core/router/router-exception-filters.js';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { envelope, EnvelopeInterceptor, isFlatEnvelope, isRawResponse } from './envelope.js';
import { sendJson } from './send-json.js';

/** One argument of the controller method; one with a `metatype` goes through the route's pipes first. */
export interface HotArgument {
  value: unknown;
  metatype?: Type;
  type?: 'body' | 'query' | 'param' | 'custom';
}

/**
 * One of the hottest routes (docs/architecture.md, "Hot routes"). Its controller method stays
 * the route's one implementation and its Nest route stays (OpenAPI, the route table); this
 * takes the request first.
 */
export interface HotRoute {
  method: 'get' | 'post';
  /** The Express path, as Nest registers the route (e.g. `/api/v1/tasks`). */
  path: string;
  controller: Type;
  /** The controller method's name. */
  handler: string;
  /** The method's arguments, as its parameter decorators would give them. */
  args: (req: Request, res: Response) => HotArgument[];
}

const getContainer = (app: NestExpressApplication): NestContainer =>
  (app as unknown as { container: NestContainer }).container;

/**
 * Mounts a hot route on Express, after the app's middleware (request id, shutdown, metrics,
 * security headers, compression, logs, JSON body, tenant context, CORS) and before Nest's
 * routes. Why: profiles of W1a and W8 (issue 27) put 20-40 % of the hub's CPU per call in
 * Nest's per-request machinery around the handler (the router's walk of every route,
 * parameter factories, the pipes consumer, the rxjs interceptor chain), not in the handler.
 *
 * It runs what Nest would run for the route, built by Nest's own classes from the route's
 * metadata: its guards (the key guard: keys, roles, tenant binding; the rate limit) through
 * GuardsConsumer, its pipes on the typed arguments, the controller method, the envelope the
 * global interceptor would add (none for a @RawResponse() route), and any error through the
 * route's exception filters. Checked once at mount: the route's interceptors must be the
 * envelope's only and its pipes validation pipes; when that stops holding (someone adds an
 * interceptor, a custom pipe or a flat envelope), it is not mounted and Nest serves the route.
 * Returns whether it was mounted.
 */
export function mountHotRoute(app: NestExpressApplication, route: HotRoute): boolean {
  const logger = new Logger('HotRoutes');
  const container = getContainer(app);
  const config = container.applicationConfig;
  let moduleKey: string | undefined;
  for (const [key, ref] of container.getModules()) if (ref.controllers.has(route.controller)) moduleKey = key;
  if (!moduleKey || !config) return false;
  const controller = app.get<object>(route.controller);
  const callback = (route.controller.prototype as Record<string, (...args: unknown[]) => unknown>)[route.handler];
  const guards = new GuardsContextCreator(container, config).create(controller, callback, moduleKey);
  const interceptors = new InterceptorsContextCreator(container, config).create(controller, callback, moduleKey);
  const pipes = new PipesContextCreator(container, config).create(controller, callback, moduleKey);
  const reflector = app.get(Reflector);
  const raw = isRawResponse(reflector, callback, route.controller);
  const plain =
    interceptors.every((i) => i instanceof EnvelopeInterceptor) &&
    pipes.every((p) => p instanceof ValidationPipe) &&
    !isFlatEnvelope(reflector, callback, route.controller);
  if (!plain) {
    logger.warn(`${route.controller.name}.${route.handler} has enhancers a hot route does not run: Nest serves it`);
    return false;
  }
  const exceptions = new RouterExceptionFilters(container, config, app.getHttpAdapter()).create(
    controller,
    callback as () => void,
    moduleKey,
  );
  // Nest's default status (201 for POST) unless @HttpCode says otherwise; the method may change it.
  const status =
    (Reflect.getMetadata(HTTP_CODE_METADATA, callback) as number | undefined) ?? (route.method === 'post' ? 201 : 200);
  const consumer = new GuardsConsumer();
  const pipeArgument = async (a: HotArgument): Promise<unknown> => {
    let value = a.value;
    if (a.metatype)
      for (const pipe of pipes) value = await pipe.transform(value, { type: a.type ?? 'body', metatype: a.metatype });
    return value;
  };
  const run = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (!(await consumer.tryActivate(guards, [req, res, next], controller, callback, 'http')))
      throw new ForbiddenException(FORBIDDEN_MESSAGE);
    const args = await Promise.all(route.args(req, res).map(pipeArgument));
    res.status(status);
    const result = await callback.apply(controller, args);
    if (raw || res.headersSent) return;
    const body = envelope(result ?? null, req.requestId);
    // Without the ETag res.json would hash the body for: nobody revalidates the answer to a POST.
    if (route.method === 'post') sendJson(res, res.statusCode, body);
    else res.json(body);
  };
  const hotRoute = (req: Request, res: Response, next: NextFunction): void => {
    run(req, res, next).catch((e: unknown) => exceptions.next(e as Error, new ExecutionContextHost([req, res, next])));
  };
  (app.getHttpAdapter().getInstance() as Record<HotRoute['method'], (path: string, h: typeof hotRoute) => void>)[
    route.method
  ](route.path, hotRoute);
  return true;
}
