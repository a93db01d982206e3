import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { type AppConfig, ConfigError, loadConfig } from './config/app-config.js';

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
  const app = await createApp(config);
  await app.listen(config.PORT, config.HOST);
  const url = await app.getUrl();
  new Logger('taskhub').log(`listening on ${url} (API docs at ${url}/docs)`);
}
