// One PostgreSQL server per run: the one TEST_DATABASE_URL names, else the hub's own embedded
// server (src/database/embedded-postgres.ts, fsync off, in a temporary DATA_DIR). Each suite
// gets its own database cloned from a migrated template (test/support/test-database.ts), so
// jest runs suites in parallel.
//
// jest loads this file outside its transform, so the embedded-server modules
// (src/database/embedded-postgres*.ts) are transpiled here with @swc/core (a dev dependency) into
// node_modules/.cache, where they resolve `pg`.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transform } from '@swc/core';
import pg from 'pg';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function loadEmbedded() {
  const src = join(root, 'src/database');
  const dir = join(root, 'node_modules/.cache/taskhub-test', String(process.pid));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const name of readdirSync(src).filter((f) => /^embedded-postgres.*\.ts$/.test(f))) {
    const { code } = await transform(readFileSync(join(src, name), 'utf8'), {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'es6' },
    });
    writeFileSync(join(dir, name.replace(/\.ts$/, '.js')), code);
  }
  try {
    return await import(pathToFileURL(join(dir, 'embedded-postgres.js')).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Drops what an earlier run left on a shared server: its template (migrations may have changed) and clones. */
async function dropLeftovers(serverUrl) {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT datname FROM pg_database WHERE datname LIKE 'taskhub\\_t\\_%' OR datname LIKE 'taskhub\\_template%'`,
    );
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export default async function globalSetup() {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    await dropLeftovers(external);
    process.env.TASKHUB_TEST_SERVER = external;
    process.stdout.write(`\n[taskhub tests] database server: PostgreSQL at ${external}\n`);
    return;
  }
  const { startEmbeddedPostgres } = await loadEmbedded();
  const dataDir = mkdtempSync(join(tmpdir(), 'taskhub-test-pg-'));
  chmodSync(dataDir, 0o755); // as root the server runs as user postgres, which must reach it
  const started = Date.now();
  const server = await startEmbeddedPostgres({
    dataDir,
    durable: false,
    database: 'postgres',
    // e.g. as root in a private clone: where the binaries user postgres can run were put
    onLog: (level, message) =>
      level === 'warn' || /running as root/.test(message)
        ? process.stdout.write(`\n[taskhub tests] ${message}\n`)
        : undefined,
  });
  globalThis.__TASKHUB_EMBEDDED__ = { server, dataDir };
  process.env.TASKHUB_TEST_SERVER = server.url;
  process.env.TASKHUB_TEST_EMBEDDED = '1';
  process.stdout.write(
    `\n[taskhub tests] database server: embedded PostgreSQL ${server.version} on port ${server.port} (${Date.now() - started} ms)\n`,
  );
}
