import { Global, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { DatabaseStatus } from './database-status.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { grantAppRole, installTenantHook } from './tenant-connection.js';

/** Holds the embedded server (if any) so it stops after the pool closes. */
export class DatabaseHandle {
  constructor(
    readonly dataSource: DataSource,
    readonly embedded: EmbeddedPostgres | undefined,
    readonly status: DatabaseStatus,
  ) {}
}

async function openDatabase(config: AppConfig): Promise<DatabaseHandle> {
  const logger = new Logger('Database');
  let embedded: EmbeddedPostgres | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.DATA_DIR,
      port: config.EMBEDDED_PG_PORT,
      onLog: (level, message) => (level === 'warn' ? logger.warn(message) : logger.log(message)),
    });
    url = embedded.url;
  }
  const status = new DatabaseStatus(config.REPORT_RETRY_MS);
  // An idle pooled connection that dies (server restart, network cut) is reported, not thrown.
  const dataSource = new DataSource(
    dataSourceOptions(url, config.DATABASE_POOL_SIZE, (e) => {
      if (!status.failed(e)) logger.warn({ err: e }, 'pooled database connection failed');
    }),
  );
  status.attach(dataSource);
  try {
    await dataSource.initialize();
  } catch (e) {
    await embedded?.stop(); // a server the hub started never outlives a failed start
    throw e;
  }
  const [{ version }] = (await dataSource.query(`SELECT current_setting('server_version') AS version`)) as {
    version: string;
  }[];
  status.describe({ version, embedded: !!embedded });
  const applied = await migrateExclusively(dataSource, () => grantAppRole(dataSource, logger));
  if (applied.length > 0) logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
  // From here on every pooled connection acts for the caller's tenant (docs/tenants.md).
  await installTenantHook(dataSource, logger);
  return new DatabaseHandle(dataSource, embedded, status);
}

/** Any 64-bit number, the same in every hub: only one process migrates a database at a time. */
const MIGRATION_LOCK = 7_346_251_009;

/**
 * Hubs started together on a fresh database would both create the same tables: the first to
 * take the advisory lock migrates, the others wait for it and then find nothing pending.
 * `afterwards` (the app role's grants) runs under the same lock.
 */
async function migrateExclusively(
  dataSource: DataSource,
  afterwards: () => Promise<void>,
): Promise<{ name: string }[]> {
  // Its own connection (not one of the pool's, which may have a single connection).
  const lock = new pg.Client({
    connectionString: (dataSource.options as { url?: string }).url,
    application_name: 'taskhub-migrations',
  });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    await afterwards(); // still under the lock
    return applied;
  } finally {
    await lock.end().catch(() => undefined); // ending the session releases the lock
  }
}

@Global()
@Module({
  providers: [
    { provide: DatabaseHandle, inject: [AppConfig], useFactory: openDatabase },
    { provide: DataSource, inject: [DatabaseHandle], useFactory: (h: DatabaseHandle) => h.dataSource },
    { provide: DatabaseStatus, inject: [DatabaseHandle], useFactory: (h: DatabaseHandle) => h.status },
  ],
  exports: [DataSource, DatabaseStatus],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(private readonly handle: DatabaseHandle) {}

  async onApplicationShutdown(): Promise<void> {
    this.handle.status.stop();
    if (this.handle.dataSource.isInitialized) await this.handle.dataSource.destroy();
    await this.handle.embedded?.stop();
  }
}
