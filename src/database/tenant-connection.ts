import type { Logger } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import { currentTenantSetting } from './tenant-context.js';

type Checkout = [PoolClient, (e?: unknown) => void];

/** The role the hub's pooled connections act as (made by the Tenants migration): no superuser, no BYPASSRLS. */
export const APP_ROLE = 'taskhub_app';

/**
 * Later migrations add tables the Tenants migration could not grant: granted again at every
 * boot (under the migration lock: concurrent GRANTs on one object can fail). A connected user
 * that may not grant (not the owner) is told once; its own privileges then decide.
 */
export async function grantAppRole(dataSource: DataSource, logger: Logger): Promise<void> {
  try {
    await dataSource.query(`
      DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
          GRANT USAGE ON SCHEMA public TO ${APP_ROLE};
          GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${APP_ROLE};
          GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${APP_ROLE};
          GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${APP_ROLE};
        END IF;
      END $$`);
  } catch (e) {
    logger.warn({ err: e }, `could not grant to ${APP_ROLE}; the connected user's own privileges apply`);
  }
}

/** pg-pool's idle list (pg-pool 3): it hands out the last entry first. */
interface IdlePool {
  _idle?: { client: PoolClient }[];
}

/**
 * Connection affinity: moves an idle connection that already carries the caller's tenant setting
 * to where the pool takes its next one from. Without it the pool's last-in-first-out order hands
 * the dispatcher (the system) the connection a request (a tenant) just released and back again,
 * and nearly every statement paid a `set_config` round trip first (~0.4 ms each on a 2-core
 * machine: W3 measured one per submit, per dispatch round and per completion). Best effort: an
 * unknown pool shape or a concurrent checkout in the same tick only costs that round trip.
 */
function preferIdleWith(pool: IdlePool | undefined, carries: (client: PoolClient) => boolean): void {
  const idle = pool?._idle;
  if (!Array.isArray(idle) || idle.length < 2 || carries(idle[idle.length - 1].client)) return;
  for (let i = idle.length - 2; i >= 0; i--)
    if (carries(idle[i].client)) {
      idle.push(...idle.splice(i, 1));
      return;
    }
}

/**
 * Every connection the pool hands out acts for the caller's tenant (tenant-context.ts):
 * - once per connection, `SET ROLE taskhub_app` when the connected user would bypass row-level
 *   security (a superuser, as the embedded server's is, or BYPASSRLS); any other user is held to
 *   the policies anyway (FORCE ROW LEVEL SECURITY covers the tables' owner);
 * - `taskhub.tenant_id` set only when it differs from what that connection already carries, so
 *   traffic of one tenant (or of the system) costs no round trip at all.
 * Applied at checkout, before any BEGIN: a transaction keeps its connection, so one context.
 * Raw pg.Clients (LISTEN, the migration lock) read no tables and are not hooked.
 */
export async function installTenantHook(dataSource: DataSource, logger: Logger): Promise<void> {
  const [me] = (await dataSource.query(
    `SELECT r.rolsuper OR r.rolbypassrls AS bypasses,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') AS role_exists
     FROM pg_roles r WHERE r.rolname = current_user`,
  )) as { bypasses: boolean; role_exists: boolean }[];
  const setRole = me.bypasses && me.role_exists;
  if (me.bypasses && !me.role_exists)
    logger.warn(`role ${APP_ROLE} is missing: the hub's connections bypass row-level security`);

  // TypeORM 1.x PostgresDriver: every query runner (and so every query and transaction) gets its
  // connection here; obtainSlaveConnection falls back to it without replicas.
  const driver = dataSource.driver as unknown as { obtainMasterConnection: () => Promise<Checkout> };
  const obtain = driver.obtainMasterConnection.bind(driver);
  const applied = new WeakMap<PoolClient, string>();
  const pool = (driver as unknown as { master?: IdlePool }).master;
  driver.obtainMasterConnection = async (): Promise<Checkout> => {
    const setting = currentTenantSetting(); // read in the caller's context, before any await
    preferIdleWith(pool, (client) => applied.get(client) === setting);
    const [client, release] = await obtain();
    const current = applied.get(client);
    if (current === setting) return [client, release];
    // Until TypeORM's query runner takes the client (and its 'error' listener), a connection that
    // dies during this statement would emit an 'error' nobody hears and end the process; the
    // statement's rejection below already reports it.
    const swallow = (): void => undefined;
    client.on('error', swallow);
    try {
      await client.query(
        current === undefined && setRole
          ? `SELECT set_config('role', '${APP_ROLE}', false), set_config('taskhub.tenant_id', $1, false)`
          : `SELECT set_config('taskhub.tenant_id', $1, false)`,
        [setting],
      );
    } catch (e) {
      applied.delete(client);
      release(e); // a connection in an unknown state is not returned to the pool
      throw e;
    } finally {
      client.removeListener('error', swallow);
    }
    applied.set(client, setting);
    return [client, release];
  };
}
