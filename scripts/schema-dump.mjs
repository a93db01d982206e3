#!/usr/bin/env node
// The database schema the migrations build, as normalized text (src/database/schema.sql), and a
// check that the committed file still matches: the drift check `migration:show` cannot be
// (there are no entities to compare with, so "nothing pending" holds by construction).
//
//   node scripts/schema-dump.mjs          rewrite src/database/schema.sql   (npm run schema:dump)
//   node scripts/schema-dump.mjs --check  compare, print a diff, exit 1     (npm run schema:check)
//
// It runs every migration (from dist/: build first) into an empty scratch database and reads the
// schema back from the catalogs with pg_get_indexdef, pg_get_constraintdef, format_type & co, in
// a fixed order: the same text on PostgreSQL 15 and 18 (pg_dump's output differs by version).
// SCHEMA_SERVER_URL=postgres://user@host:port/db names a server to use (a scratch database is
// created there and dropped after; `db` is only where it connects to do that); without it an
// embedded PostgreSQL is started in a temporary directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

const ROOT = resolve(import.meta.dirname, '..');
const SCHEMA_FILE = join(ROOT, 'src/database/schema.sql');
const DIST = join(ROOT, 'dist/src/database');
const check = process.argv.includes('--check');

if (!existsSync(join(DIST, 'data-source-options.js'))) {
  console.error('schema-dump: dist/ is missing: run npm run build first');
  process.exit(2);
}
await import('reflect-metadata');
const { DataSource } = await import('typeorm');
const { dataSourceOptions } = await import(pathToFileURL(join(DIST, 'data-source-options.js')).href);

/** Every query's rows, in the order the query gives (each query orders by name, collation C). */
const Q = {
  extensions: `SELECT extname AS name FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname COLLATE "C"`,
  types: `
    SELECT t.typname AS name,
           CASE t.typtype WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                                      FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                          ELSE 'DOMAIN ' || format_type(t.typbasetype, t.typtypmod) END AS def
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
     ORDER BY t.typname COLLATE "C"`,
  sequences: `
    SELECT sequencename AS name, data_type::text AS type, start_value, increment_by, min_value, max_value, cycle
      FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename COLLATE "C"`,
  tables: `
    SELECT c.oid, c.relname AS name, c.relkind, c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname COLLATE "C"`,
  columns: `
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
           pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity AS identity, a.attgenerated AS generated,
           CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_collation co ON co.oid = a.attcollation
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum`,
  // NOT NULL is shown on the column: PostgreSQL 18 also lists it here (contype 'n'), 15 does not.
  constraints: `
    SELECT conname AS name, pg_get_constraintdef(oid) AS def
      FROM pg_constraint WHERE conrelid = $1 AND contype <> 'n' ORDER BY conname COLLATE "C"`,
  indexes: `
    SELECT indexname AS name, indexdef AS def FROM pg_indexes
     WHERE schemaname = 'public' AND tablename = $1 ORDER BY indexname COLLATE "C"`,
  triggers: `
    SELECT tgname AS name, pg_get_triggerdef(oid) AS def FROM pg_trigger
     WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname COLLATE "C"`,
  policies: `
    SELECT policyname AS name, permissive, array_to_string(roles, ',') AS roles, cmd, qual, with_check
      FROM pg_policies WHERE schemaname = 'public' AND tablename = $1 ORDER BY policyname COLLATE "C"`,
  views: `
    SELECT c.relname AS name, c.relkind, pg_get_viewdef(c.oid) AS def
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm') ORDER BY c.relname COLLATE "C"`,
  functions: `
    SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args, pg_get_functiondef(p.oid) AS def
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
       AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = p.oid AND dep.deptype = 'e')
     ORDER BY p.proname COLLATE "C", pg_get_function_identity_arguments(p.oid) COLLATE "C"`,
};

/** One line per statement; inner whitespace runs (newlines of function bodies, view text) kept but trimmed. */
const clean = (text) =>
  String(text)
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .trim();

async function readSchema(client) {
  const rows = async (sql, args = []) => (await client.query(sql, args)).rows;
  const out = [
    '-- The schema the migrations build, read from the catalogs by scripts/schema-dump.mjs.',
    '-- Do not edit: run `npm run schema:dump` after changing a migration (docs/database.md).',
    '',
  ];
  for (const e of await rows(Q.extensions)) out.push(`EXTENSION ${e.name}`);
  for (const t of await rows(Q.types)) out.push(`TYPE ${t.name} ${t.def}`);
  for (const s of await rows(Q.sequences))
    out.push(
      `SEQUENCE ${s.name} ${s.type} START ${s.start_value} INCREMENT ${s.increment_by} MIN ${s.min_value} MAX ${s.max_value}${s.cycle ? ' CYCLE' : ''}`,
    );
  for (const t of await rows(Q.tables)) {
    out.push('', `TABLE ${t.name}${t.relkind === 'p' ? ' PARTITIONED' : ''}`);
    if (t.rls) out.push(`  ROW LEVEL SECURITY${t.force_rls ? ' FORCED' : ''}`);
    for (const c of await rows(Q.columns, [t.oid])) {
      let line = `  ${c.name} ${c.type}`;
      if (c.collation) line += ` COLLATE "${c.collation}"`;
      if (c.not_null) line += ' NOT NULL';
      if (c.identity) line += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`;
      if (c.generated === 's') line += ` GENERATED ALWAYS AS ${c.default} STORED`;
      else if (c.default !== null) line += ` DEFAULT ${c.default}`;
      out.push(line);
    }
    for (const c of await rows(Q.constraints, [t.oid])) out.push(`  CONSTRAINT ${c.name} ${clean(c.def)}`);
    for (const i of await rows(Q.indexes, [t.name])) out.push(`  INDEX ${clean(i.def)}`);
    for (const g of await rows(Q.triggers, [t.oid])) out.push(`  TRIGGER ${clean(g.def)}`);
    for (const p of await rows(Q.policies, [t.name]))
      out.push(
        `  POLICY ${p.name} ${p.permissive} FOR ${p.cmd} TO ${p.roles}` +
          (p.qual ? ` USING (${clean(p.qual)})` : '') +
          (p.with_check ? ` WITH CHECK (${clean(p.with_check)})` : ''),
      );
  }
  for (const v of await rows(Q.views))
    out.push('', `${v.relkind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${v.name} AS`, clean(v.def));
  for (const f of await rows(Q.functions)) out.push('', `FUNCTION ${f.name}(${f.args})`, clean(f.def));
  return out.join('\n') + '\n';
}

/** A PostgreSQL server to use, and how to let go of it. */
async function server() {
  const given = process.env.SCHEMA_SERVER_URL;
  if (given) return { adminUrl: given, label: `SCHEMA_SERVER_URL`, stop: async () => undefined };
  const { startEmbeddedPostgres } = await import(pathToFileURL(join(DIST, 'embedded-postgres.js')).href);
  const dataDir = mkdtempSync(join(tmpdir(), 'taskhub-schema-'));
  const pgServer = await startEmbeddedPostgres({ dataDir, durable: false, database: 'postgres' });
  return {
    adminUrl: pgServer.url,
    label: `embedded PostgreSQL ${pgServer.version}`,
    stop: async () => {
      await pgServer.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function dumpSchema() {
  const srv = await server();
  const scratch = `taskhub_schema_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: srv.adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query('SHOW server_version');
    console.error(`schema-dump: ${srv.label} (PostgreSQL ${rows[0].server_version}), scratch database ${scratch}`);
    await admin.query(`CREATE DATABASE "${scratch}"`);
    try {
      const url = new URL(srv.adminUrl);
      url.pathname = `/${scratch}`;
      const ds = new DataSource(dataSourceOptions(url.toString(), 1));
      await ds.initialize();
      try {
        await ds.runMigrations({ transaction: 'each' });
      } finally {
        await ds.destroy();
      }
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        return await readSchema(client);
      } finally {
        await client.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE)`);
    }
  } finally {
    await admin.end();
    await srv.stop();
  }
}

const schema = await dumpSchema();
if (!check) {
  writeFileSync(SCHEMA_FILE, schema);
  console.error(`schema-dump: wrote ${SCHEMA_FILE}`);
} else {
  const committed = existsSync(SCHEMA_FILE) ? readFileSync(SCHEMA_FILE, 'utf8') : '';
  if (committed === schema) {
    console.error('schema-dump: src/database/schema.sql matches the migrations');
  } else {
    const built = join(mkdtempSync(join(tmpdir(), 'taskhub-schema-diff-')), 'schema.sql');
    writeFileSync(built, schema);
    spawnSync(
      'diff',
      ['-u', '--label', 'src/database/schema.sql (committed)', '--label', 'from the migrations', SCHEMA_FILE, built],
      {
        stdio: 'inherit',
      },
    );
    rmSync(built, { force: true });
    console.error(
      'schema-dump: src/database/schema.sql differs from what the migrations build: run `npm run schema:dump` and commit it (or fix the migration)',
    );
    process.exit(1);
  }
}
