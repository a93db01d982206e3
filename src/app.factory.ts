import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module.js';
import type { AppConfig } from './config/app-config.js';
import { createPino, httpLogger, PinoLoggerService } from './common/logger.js';
import { PACKAGE } from './common/package-info.js';
import { requestIdMiddleware } from './common/request-id.js';
import { HubIoAdapter } from './modules/realtime/hub-io.adapter.js';

function corsOrigin(value: string): boolean | string[] {
  if (value.trim() === '*') return true;
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Builds the whole HTTP app (not yet listening): used by `main`, the CLI and the e2e tests. */
export async function createApp(config: AppConfig): Promise<NestExpressApplication> {
  const pino = createPino(config.LOG_LEVEL);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    logger: new PinoLoggerService(pino),
    bodyParser: false,
  });
  app.use(requestIdMiddleware);
  if (config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' || config.LOG_LEVEL === 'info') app.use(httpLogger(pino));
  app.useBodyParser('json', { limit: config.BODY_LIMIT_BYTES });
  app.enableCors({ origin: corsOrigin(config.CORS_ORIGIN), exposedHeaders: ['X-Request-Id'] });
  app.disable('x-powered-by');
  const io = new HubIoAdapter(app, config.REDIS_URL);
  await io.connect();
  app.useWebSocketAdapter(io);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('taskhub')
      .setDescription('Task orchestration hub: durable tasks, pull workers, devices, agent services.')
      .setVersion(PACKAGE.version)
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
