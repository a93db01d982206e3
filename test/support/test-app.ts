import type { NestExpressApplication } from '@nestjs/platform-express';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory.js';
import { loadConfig } from '../../src/config/app-config.js';
import { ApiKeysService } from '../../src/modules/auth/api-keys.service.js';
import { suiteDatabaseUrl } from './test-database.js';

export interface TestApp {
  app: NestExpressApplication;
  /** http://127.0.0.1:<port> of the listening app */
  url: string;
  db: DataSource;
  keys: { admin: string; client: string; worker: string };
  close(): Promise<void>;
}

/**
 * TRUNCATE that retries when it deadlocks with the running hub (its dispatcher locks nodes
 * then tasks while a test cleans up in the other order).
 */
export async function truncate(db: DataSource, tables: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      // The hub's pool acts as taskhub_app (src/database/tenant-connection.ts), which may not
      // TRUNCATE: for this one transaction the connection's own user (the server's superuser) does.
      if ('transaction' in db)
        await db.transaction(async (tx) => {
          await tx.query('SET LOCAL ROLE NONE');
          await tx.query(`TRUNCATE ${tables} CASCADE`);
        });
      else await (db as DataSource).query(`TRUNCATE ${tables} CASCADE`);
      return;
    } catch (e) {
      if ((e as { driverError?: { code?: string } }).driverError?.code !== '40P01' || attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

/** Empties every table so each suite starts from nothing (but the `default` tenant). */
export async function resetDatabase(db: DataSource): Promise<void> {
  await truncate(
    db,
    'tenants, task_events, tasks, nodes, node_logs, api_keys, routing_rules, agent_services, agent_sessions, agent_service_counters, service_stat_samples, plugins, plugin_deliveries, runtime_settings, llm_key_quota, llm_usage RESTART IDENTITY',
  );
  await db.query(`INSERT INTO tenants (id, name) VALUES ('default', 'default')`);
}

/**
 * Boots the real app on this test file's own database, listening on a random loopback
 * port, with a fresh set of keys. `env` overrides configuration (strings, as from the environment).
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: { keepData?: boolean } = {},
): Promise<TestApp> {
  const dbUrl = await suiteDatabaseUrl();
  const config = loadConfig({
    DATABASE_POOL_SIZE: '10',
    DATABASE_URL: dbUrl,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const app = await createApp(config);
  await app.init();
  const db = app.get(DataSource);
  if (!options.keepData) await resetDatabase(db);
  const keys = app.get(ApiKeysService);
  const [admin, client, worker] = await Promise.all([
    keys.create('test-admin', 'admin', null, null), // global, like the bootstrap admin
    keys.create('test-client', 'client'),
    keys.create('test-worker', 'worker'),
  ]);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    db,
    keys: { admin: admin.key, client: client.key, worker: worker.key },
    close: () => app.close(),
  };
}

export const bearer = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });
