// The TypeORM DataSource for the migration CLI (`npm run migration:*`).
// With DATABASE_URL unset it opens the embedded database in DATA_DIR, like the hub.
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './src/database/data-source-options.js';
import { startEmbeddedPostgres } from './src/database/embedded-postgres.js';

// The embedded server started here stops when the CLI process exits.
const url =
  process.env.DATABASE_URL || (await startEmbeddedPostgres({ dataDir: process.env.DATA_DIR || './data' })).url;

// New migrations go in src/database/migrations and in the list in data-source-options.ts.
export default new DataSource(dataSourceOptions(url, 1));
