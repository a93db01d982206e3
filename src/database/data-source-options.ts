import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1763800000000 } from './migrations/1763800000000-InitialSchema.js';
import { Nodes1763900000000 } from './migrations/1763900000000-Nodes.js';
import { RoutingRules1764000000000 } from './migrations/1764000000000-RoutingRules.js';
import { AgentServices1764100000000 } from './migrations/1764100000000-AgentServices.js';
import { Delivery1764200000000 } from './migrations/1764200000000-Delivery.js';
import { ReadyIndexOrder1764300000000 } from './migrations/1764300000000-ReadyIndexOrder.js';
import { RuntimeSettings1764400000000 } from './migrations/1764400000000-RuntimeSettings.js';
import { Plugins1764500000000 } from './migrations/1764500000000-Plugins.js';
import { ApexNodes1764600000000 } from './migrations/1764600000000-ApexNodes.js';
import { LlmAccounting1764700000000 } from './migrations/1764700000000-LlmAccounting.js';
import { CompletedByTypeIndex1764800000000 } from './migrations/1764800000000-CompletedByTypeIndex.js';
import { AgentSessionStats1764900000000 } from './migrations/1764900000000-AgentSessionStats.js';
import { ApiKeyRoles1765000000000 } from './migrations/1765000000000-ApiKeyRoles.js';
import { Tenants1765100000000 } from './migrations/1765100000000-Tenants.js';
import { SessionsPerTenant1765300000000 } from './migrations/1765300000000-SessionsPerTenant.js';
import { TaskEventsTenantGiven1765500000000 } from './migrations/1765500000000-TaskEventsTenantGiven.js';
import { ReadyQueues1765600000000 } from './migrations/1765600000000-ReadyQueues.js';
import { TaskCounters1765700000000 } from './migrations/1765700000000-TaskCounters.js';
import { RetentionIndex1765800000000 } from './migrations/1765800000000-RetentionIndex.js';
import { TaskListIndexes1765900000000 } from './migrations/1765900000000-TaskListIndexes.js';
import { Schedules1766000000000 } from './migrations/1766000000000-Schedules.js';
import { PluginNamesAndTools1766100000000 } from './migrations/1766100000000-PluginNamesAndTools.js';
import { AgentStatsPersist1766200000000 } from './migrations/1766200000000-AgentStatsPersist.js';
import { Rollouts1766500000000 } from './migrations/1766500000000-Rollouts.js';
import { SharedNodes1766600000000 } from './migrations/1766600000000-SharedNodes.js';
import { TaskTraceContext1766300000000 } from './migrations/1766300000000-TaskTraceContext.js';
import { ConcurrencyKeys1766400000000 } from './migrations/1766400000000-ConcurrencyKeys.js';

/** Every migration, oldest first. Listed explicitly so dist and ts-jest agree. */
export const migrations = [
  InitialSchema1763800000000,
  Nodes1763900000000,
  RoutingRules1764000000000,
  AgentServices1764100000000,
  Delivery1764200000000,
  ReadyIndexOrder1764300000000,
  RuntimeSettings1764400000000,
  Plugins1764500000000,
  ApexNodes1764600000000,
  LlmAccounting1764700000000,
  CompletedByTypeIndex1764800000000,
  AgentSessionStats1764900000000,
  ApiKeyRoles1765000000000,
  Tenants1765100000000,
  SessionsPerTenant1765300000000,
  TaskEventsTenantGiven1765500000000,
  ReadyQueues1765600000000,
  TaskCounters1765700000000,
  RetentionIndex1765800000000,
  TaskListIndexes1765900000000,
  Schedules1766000000000,
  PluginNamesAndTools1766100000000,
  AgentStatsPersist1766200000000,
  TaskTraceContext1766300000000,
  ConcurrencyKeys1766400000000,
  Rollouts1766500000000,
  SharedNodes1766600000000,
];

/** `onPoolError`: an idle pooled connection died (server restart, network cut); without it TypeORM only logs. */
export function dataSourceOptions(url: string, poolSize = 20, onPoolError?: (e: unknown) => void): DataSourceOptions {
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
    // A server that does not answer (network cut) fails a connect in 5 s instead of hanging it.
    extra: { connectionTimeoutMillis: 5000 },
    logging: false,
    ...(onPoolError ? { poolErrorHandler: onPoolError } : {}),
  };
}
