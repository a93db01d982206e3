import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';

/** What a client is for: its connection name (`CLIENT LIST` shows `taskhub:<role>`) and its defaults. */
export type RedisRole = 'io-pub' | 'io-sub' | 'fanout-pub' | 'fanout-sub' | 'rate-limit' | 'health';

/** Commands wait this many reconnects at most, then fail (callers log and carry on; nothing hangs). */
const SHARED: RedisOptions = { maxRetriesPerRequest: 2 };

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  // The Socket.IO adapter connects before the app listens (HubIoAdapter.connect awaits it).
  'io-pub': { lazyConnect: true, maxRetriesPerRequest: 3 },
  'io-sub': { lazyConnect: true, maxRetriesPerRequest: 3 },
  'fanout-pub': {},
  'fanout-sub': {},
  'rate-limit': {},
  // A probe: answers at once, never queues while Redis is away.
  health: { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 },
};

const logger = new Logger('Redis');

/**
 * Every Redis client of the hub is built here, with the options its role needs. ioredis
 * emits `error` on every failed reconnect; that is logged once per outage (and the recovery
 * once), not once per retry, and never as an unhandled `error` event.
 */
export function createRedisClient(url: string, role: RedisRole): Redis {
  const client = new Redis(url, { ...SHARED, ...ROLE_OPTIONS[role], connectionName: `taskhub:${role}` });
  let failing = false;
  client.on('error', (e: Error) => {
    if (failing) return;
    failing = true;
    logger.warn({ err: e, role }, `Redis (${role}) unavailable: ${e.message}; retrying`);
  });
  client.on('ready', () => {
    if (!failing) return;
    failing = false;
    logger.log(`Redis (${role}) reconnected`);
  });
  return client;
}
