import 'reflect-metadata';
import compression from 'compression';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface.js';
import type { json, NextFunction, Request, Response } from 'express';
import { SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module.js';
import type { AppConfig } from './config/app-config.js';
import { createPino, httpLogger, PinoLoggerService } from './common/logger.js';
import { JSON_TYPES, requireJsonBody } from './common/json-body.js';
import { requestIdMiddleware } from './common/request-id.js';
import { httpTracing } from './common/tracing/http-tracing.js';
import { securityHeaders } from './common/security-headers.js';
import { tenantRequestContext } from './database/tenant-context.js';
import { MetricsService } from './modules/metrics/metrics.service.js';
import { EdgeMetrics } from './modules/edge/edge-metrics.js';
import { EdgeExpressAdapter } from './modules/edge/http-server.js';
import { RuntimeConfigService } from './modules/runtime-config/runtime-config.service.js';
import { ShutdownService } from './modules/metrics/shutdown.service.js';
import { HubIoAdapter } from './modules/realtime/hub-io.adapter.js';
import { SocketIoGuard } from './modules/edge/socket-io-guard.js';
import { buildOpenApiDocument } from './openapi/openapi-document.js';
import { type HotRoute, mountHotRoute } from './common/hot-routes.js';
import { LLM_HOT_ROUTES } from './modules/llm/llm.hot-routes.js';
import { TASK_HOT_ROUTES } from './modules/tasks/tasks.hot-routes.js';

/** Routes taken ahead of Nest's router, through their own guards, pipes and filters (src/common/hot-routes.ts). */
const HOT_ROUTES: HotRoute[] = [...TASK_HOT_ROUTES, ...LLM_HOT_ROUTES];

/** Request durations by method, matched route and status (bounded label values). */
function httpDurations(metrics: MetricsService): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      end({
        method: req.method,
        route: route ? `${req.baseUrl}${route}` : 'unmatched',
        status: String(res.statusCode),
      });
    });
    next();
  };
}

const PLUGIN_CALLBACK_PATH = /^\/plugin-callback\//i; // Express routes ignore case

/**
 * Plugin callbacks are signed over the body bytes: the parser keeps them (a reference to the
 * buffer it parsed, no copy) on that route only. `verify` is typed away by Nest (it reserves it
 * for its all-routes `rawBody` option), but passed through to express.json as is.
 */
function jsonOptions(limit: number): Parameters<typeof json>[0] {
  return {
    limit,
    type: JSON_TYPES,
    verify: (req, _res, buf) => {
      if (PLUGIN_CALLBACK_PATH.test(req.url ?? '')) (req as Request).rawBody = buf;
    },
  };
}

const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function corsOrigin(value: string): boolean | string[] {
  if (value.trim() === '*') return true;
  return commaList(value);
}

/** One CORS policy for HTTP and the Socket.IO handshake (both use the `cors` package's options). */
function corsOptions(config: AppConfig): CorsOptions {
  return {
    // `true` echoes the request's origin: what `*` means, and the only form browsers accept with credentials.
    origin: corsOrigin(config.CORS_ORIGIN),
    credentials: config.CORS_CREDENTIALS,
    methods: commaList(config.CORS_METHODS),
    ...(config.CORS_ALLOWED_HEADERS ? { allowedHeaders: commaList(config.CORS_ALLOWED_HEADERS) } : {}),
    exposedHeaders: ['X-Request-Id'],
  };
}

/** Builds the whole HTTP app (not yet listening): used by `main`, the CLI and the e2e tests. */
export async function createApp(config: AppConfig): Promise<NestExpressApplication> {
  const pino = createPino(config.LOG_LEVEL, { format: config.LOG_FORMAT });
  // The adapter creates the HTTP server before the module that counts its refusals exists.
  const edge: { metrics?: EdgeMetrics } = {};
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config),
    new EdgeExpressAdapter(config, () => edge.metrics),
    {
      logger: new PinoLoggerService(pino),
      bodyParser: false,
      abortOnError: false, // a failed start throws to the caller, which prints why (server.ts)
    },
  );
  edge.metrics = app.get(EdgeMetrics);
  // LOG_LEVEL is hot (/v1/config): the one pino instance follows it.
  app.get(RuntimeConfigService).onChange(['LOG_LEVEL'], () => (pino.level = config.LOG_LEVEL));
  app.use(requestIdMiddleware);
  app.use(httpTracing); // before the rest: the server span covers them
  app.use(app.get(ShutdownService).middleware);
  app.use(httpDurations(app.get(MetricsService)));
  // CSP off: the Swagger UI at /docs runs inline scripts; the API itself serves JSON only.
  if (config.SECURITY_HEADERS)
    app.use(securityHeaders({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false }));
  if (config.COMPRESSION) {
    // compression wraps every response it sees (a dozen closures and listeners, ~9 KB of garbage
    // a request in W1a's allocation profile) to decide at the end; a request that accepts no
    // encoding can only get the body as it is, so it skips the wrapping.
    const compress = compression({ threshold: config.COMPRESSION_MIN_BYTES });
    app.use((req: Request, res: Response, next: NextFunction) =>
      req.headers['accept-encoding'] ? compress(req, res, next) : next(),
    );
  }
  app.use(httpLogger(pino)); // always: it checks the (hot) level per request
  app.use(requireJsonBody);
  app.useBodyParser('json', jsonOptions(config.BODY_LIMIT_BYTES));
  // After the body parser (its stream callbacks would lose the context): every request starts as
  // nobody, and the key guard binds its tenant (docs/tenants.md).
  app.use(tenantRequestContext);
  const cors = corsOptions(config);
  app.enableCors(cors);
  app.disable('x-powered-by');
  // After every middleware above (ids, limits, logging, body, tenant context, CORS), before Nest's routes.
  for (const route of HOT_ROUTES) mountHotRoute(app, route);
  const io = new HubIoAdapter(
    app,
    config.REDIS_URL,
    {
      pingInterval: config.SOCKET_PING_INTERVAL_MS,
      pingTimeout: config.SOCKET_PING_TIMEOUT_MS,
      maxHttpBufferSize: config.SOCKET_IO_MAX_MESSAGE_BYTES, // inbound messages, every namespace
      cors,
    },
    app.get(SocketIoGuard),
  );
  await io.connect();
  app.useWebSocketAdapter(io);

  // Built on the first request to /docs or /docs-json, not at every start (~0.3 s of CPU).
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs-json' });
  return app;
}
