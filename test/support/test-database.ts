import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options.js';

// Databases on the run's server (test/support/global-setup.mjs): the migrations run once into
// `taskhub_template`, and each suite gets a clone of it (CREATE DATABASE … TEMPLATE is a file
// copy: milliseconds), so suites never see each other's rows and jest runs them in parallel.

const TEMPLATE = 'taskhub_template';
/** Any fixed number: serialises the template build between jest workers. */
const TEMPLATE_LOCK = 727_001;

function serverUrl(): string {
  const url = process.env.TASKHUB_TEST_SERVER;
  if (!url)
    throw new Error('TASKHUB_TEST_SERVER is not set: run the tests through jest (its global setup starts the server)');
  return url;
}

/** The URL of database `name` on the run's server. */
export function databaseUrl(name: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl('postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Builds the template once per run: the first worker takes the lock, migrates a scratch
 * database and renames it into place (so a half-built template is never cloned).
 */
async function ensureTemplate(): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    try {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE]);
      if (found.rowCount) return;
      const scratch = `${TEMPLATE}_build`;
      await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${scratch}`);
      const ds = new DataSource(dataSourceOptions(databaseUrl(scratch), 1));
      await ds.initialize();
      try {
        await ds.runMigrations({ transaction: 'each' });
      } finally {
        await ds.destroy();
      }
      await admin.query(`ALTER DATABASE ${scratch} RENAME TO ${TEMPLATE}`);
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    }
  });
}

let counter = 0;

/**
 * A new migrated database for this suite (`taskhub_t_<label>_<worker pid>_<n>`); its URL.
 * Dropped with the run's server (embedded) or at the next run's start (TEST_DATABASE_URL).
 */
export async function createSuiteDatabase(label = 'suite'): Promise<string> {
  await ensureTemplate();
  const name = `taskhub_t_${label
    .replace(/[^a-z0-9_]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}" TEMPLATE ${TEMPLATE}`));
  return databaseUrl(name);
}

/** An empty database (no migrations: the hub that opens it migrates it); its URL. */
export async function createEmptyDatabase(label: string): Promise<string> {
  const name = `taskhub_t_${label
    .replace(/[^a-z0-9_]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
  return databaseUrl(name);
}

let suiteDatabase: Promise<string> | undefined;

/** The database of the running test file (one per file: jest gives each file its own module registry). */
export function suiteDatabaseUrl(): Promise<string> {
  suiteDatabase ??= createSuiteDatabase(expect.getState().testPath?.split('/').pop()?.split('.')[0] ?? 'suite');
  return suiteDatabase;
}
