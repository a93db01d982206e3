import { ForbiddenException, Logger, ValidationPipe } from '@nestjs/common';
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
import { LlmController } from './llm.controller.js';

/** The route the fast path serves: the same path and method as LlmController.chat. */
export const CHAT_COMPLETIONS_PATH = '/v1/chat/completions';

/**
 * POST /v1/chat/completions without Nest's per-request router work (docs/llm.md, "The lean
 * route"). Mounted on Express after the app's middleware (request id, shutdown, metrics,
 * security headers, compression, logs, JSON body, tenant context, CORS) and before Nest's
 * routes, it runs what Nest would run for LlmController.chat, built by Nest's own classes: the
 * route's guards (the key guard: keys, roles, tenant; the rate limit) through GuardsConsumer,
 * then the controller method itself, and a refusal through the route's exception filters.
 * What it leaves out changes no answer, and is checked once at mount: every interceptor of the
 * route must hand the handler's result back untouched (the envelope does, for a @RawResponse()
 * route); the pipes must be validation pipes, which pass the route's untyped body through. When that no longer holds (someone adds
 * an interceptor or a typed body), the fast path is not mounted and Nest serves the route.
 *
 * Returns whether it was mounted.
 */
export function mountChatFastPath(app: NestExpressApplication): boolean {
  const logger = new Logger('ChatFastPath');
  const container = (app as unknown as { container: NestContainer }).container;
  const config = container.applicationConfig;
  let moduleKey: string | undefined;
  for (const [key, ref] of container.getModules()) if (ref.controllers.has(LlmController)) moduleKey = key;
  if (!moduleKey || !config) return false;
  const controller = app.get(LlmController);
  // The handler Nest's metadata (roles, enhancers) hangs on.
  const callback = LlmController.prototype.chat as unknown as (...args: unknown[]) => unknown;
  const guards = new GuardsContextCreator(container, config).create(controller, callback, moduleKey);
  const interceptors = new InterceptorsContextCreator(container, config).create(controller, callback, moduleKey);
  const pipes = new PipesContextCreator(container, config).create(controller, callback, moduleKey);
  const paramTypes = (Reflect.getMetadata('design:paramtypes', LlmController.prototype, 'chat') ?? []) as unknown[];
  // An interceptor that hands back the handler's own observable for this route does nothing to it.
  const probe = new ExecutionContextHost([{}, {}, () => undefined], LlmController, callback);
  const handled = { handle: () => handled };
  const passThrough =
    interceptors.every((i) => (i.intercept(probe, handled as never) as unknown) === handled) &&
    pipes.every((p) => p instanceof ValidationPipe) &&
    paramTypes[0] === Object;
  if (!passThrough) {
    logger.warn('LlmController.chat has interceptors or pipes the fast path does not run: Nest serves the route');
    return false;
  }
  const exceptions = new RouterExceptionFilters(container, config, app.getHttpAdapter()).create(
    controller,
    callback as () => void,
    moduleKey,
  );
  const consumer = new GuardsConsumer();
  const chatFastPath = (req: Request, res: Response, next: NextFunction): void => {
    const args = [req, res, next];
    consumer
      .tryActivate(guards, args, controller, callback, 'http')
      .then((allowed) => {
        if (!allowed) throw new ForbiddenException(FORBIDDEN_MESSAGE);
        return controller.chat(req.body as unknown, req, res);
      })
      .catch((e: unknown) => exceptions.next(e as Error, new ExecutionContextHost(args)));
  };
  (app.getHttpAdapter().getInstance() as { post: (path: string, h: typeof chatFastPath) => void }).post(
    CHAT_COMPLETIONS_PATH,
    chatFastPath,
  );
  return true;
}
