import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Real Postgres compiled to WASM, served on a loopback port so the app uses the
 * same `pg` driver, SQL and migrations as against a real server.
 * `dataDir` undefined → in memory (tests); otherwise data survives restarts.
 */
export async function startEmbeddedPostgres(dataDir?: string, port = 0): Promise<EmbeddedPostgres> {
  let location = 'memory://';
  if (dataDir) {
    const dir = resolve(dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
    location = dir;
  }
  const db = await PGlite.create(location);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 64 });
  await server.start();
  const address = server.getServerConn();
  return {
    url: `postgres://postgres@${address}/postgres?sslmode=disable`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
