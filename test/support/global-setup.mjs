// One database for the whole run: the local PostgreSQL when TEST_DATABASE_URL is set
// (its public schema is wiped first), else an in-memory PGlite served on a loopback port
// (the same setup as src/database/embedded-postgres.ts; jest loads this file outside its
// ESM transform, so it cannot import the TypeScript source).
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';

export default async function globalSetup() {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    const client = new pg.Client({ connectionString: external });
    await client.connect();
    await client.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;');
    await client.end();
    process.env.TASKHUB_TEST_DB = external;
    process.stdout.write(`\n[taskhub tests] database: PostgreSQL at ${external}\n`);
    return;
  }
  const db = await PGlite.create('memory://');
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 });
  await server.start();
  globalThis.__TASKHUB_EMBEDDED__ = { db, server };
  process.env.TASKHUB_TEST_DB = `postgres://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
  process.env.TASKHUB_TEST_DB_KIND = 'pglite';
  process.stdout.write(`\n[taskhub tests] database: embedded PGlite at ${server.getServerConn()}\n`);
}
