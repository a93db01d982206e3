import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1763800000000 } from './migrations/1763800000000-InitialSchema.js';

/** Every migration, oldest first. Listed explicitly so dist and ts-jest agree. */
export const migrations = [InitialSchema1763800000000];

export function dataSourceOptions(url: string, poolSize = 20): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    uuidExtension: 'pgcrypto',
    synchronize: false,
    migrationsRun: false,
    migrations,
    migrationsTableName: 'migrations',
    entities: [],
    poolSize,
    logging: false,
  };
}
