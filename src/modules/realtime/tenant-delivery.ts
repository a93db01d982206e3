import { currentTenantSetting, NO_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';

/**
 * Stream isolation (docs/tenants.md, "Sockets, streams and dispatch"): a listener acting for
 * `setting` (a tenant id, or `*` for a global admin acting for every tenant) hears what belongs
 * to `tenant`; `null` is hub-wide (hub log lines, a node of no known tenant): global admins only.
 * Checked where a frame is delivered, so a line that came from another hub through Redis is
 * filtered by the hub that holds the listener.
 */
export const sees = (setting: string, tenant: string | null): boolean =>
  setting === SYSTEM_TENANT || (tenant !== null && setting === tenant);

/**
 * The tenant of something published now, read from the publisher's context (the EventBus calls
 * its handlers synchronously, inside it): a tenant, or null when the system or nobody publishes.
 */
export function publishingTenant(): string | null {
  const setting = currentTenantSetting();
  return setting === SYSTEM_TENANT || setting === NO_TENANT ? null : setting;
}
