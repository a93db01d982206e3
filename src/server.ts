import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { type AppConfig, ConfigError, loadConfig } from './config/app-config.js';
import { ShutdownService } from './modules/metrics/shutdown.service.js';

/** Validates the environment, builds the app and listens. Exits 1 on bad config. */
export async function startServer(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  let app: Awaited<ReturnType<typeof createApp>>;
  try {
    app = await createApp(config);
    await app.listen(config.PORT, config.HOST);
  } catch (e) {
    // A start that cannot succeed (embedded database, port, migrations): one line saying why.
    process.stderr.write(`taskhub: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const url = await app.getUrl();
  const logger = new Logger('taskhub');
  logger.log(`listening on ${url} (API docs at ${url}/docs)`);

  // Graceful stop (SIGTERM, SIGINT, POST /shutdown), bounded by SHUTDOWN_TIMEOUT_MS (see
  // ShutdownService): refuse new requests, tell devices and clients, let in-flight ones finish,
  // close sockets, managed services, timers and the database, exit 0.
  let stopping = false;
  const exit = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.log(`${reason}: closing`);
    app.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A stray rejection inside a library (e.g. a Redis command flushed while its connection
  // closes at shutdown) is logged; it must not take the whole hub down.
  process.on('unhandledRejection', (e: unknown) => logger.error({ err: e }, 'unhandled rejection'));

  const drain = app.get(ShutdownService);
  drain.exitHook = exit;
  drain.forceHook = () => process.exit(1);
  // Under `npm start` a Ctrl-C arrives twice at once (from the terminal, and forwarded by npm): a
  // repeat within a second is the same request. A later one means "now": exit without draining
  // (the exit hook still gives the embedded PostgreSQL its fast shutdown).
  let signalledAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!signalledAt) {
      signalledAt = Date.now();
      void drain.begin(signal);
    } else if (Date.now() - signalledAt >= 1000) {
      logger.warn(`${signal} again: exiting without waiting for the shutdown`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
