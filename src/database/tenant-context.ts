import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Whose rows the current async call chain may touch (docs/tenants.md). The value is what the
 * database hook puts into `taskhub.tenant_id` before a pooled connection is used:
 *   '<tenant id>'  one tenant (row-level security shows and accepts only its rows)
 *   '*'            the system: background work and global admins (every row; inserts go to `default`)
 *   ''             nobody yet: a request before auth has bound it (sees nothing, inserts fail)
 * No context at all is the system: the dispatcher, sweepers and liveness ticks run outside
 * requests. Requests always open one (tenantRequestContext), so a request that never reaches
 * auth fails closed.
 */
export const SYSTEM_TENANT = '*';
export const NO_TENANT = '';
export const DEFAULT_TENANT = 'default';

/** Mutable so the auth guard can bind the tenant of a request that opened as "none". */
interface TenantStore {
  setting: string;
}

const storage = new AsyncLocalStorage<TenantStore>();

export function runAsTenant<T>(tenantId: string, fn: () => T): T {
  return storage.run({ setting: tenantId }, fn);
}

export function runAsSystem<T>(fn: () => T): T {
  return storage.run({ setting: SYSTEM_TENANT }, fn);
}

/** Runs `fn` under a setting as read from currentTenantSetting() (to carry a caller's context along). */
export function runWithTenantSetting<T>(setting: string, fn: () => T): T {
  return storage.run({ setting }, fn);
}

/** The value for `taskhub.tenant_id`: '*' outside any context. */
export function currentTenantSetting(): string {
  return storage.getStore()?.setting ?? SYSTEM_TENANT;
}

/** Opens a request's context as "none"; `bindRequestTenant` fills it in once the caller is known. */
export function runAsNobody<T>(fn: () => T): T {
  return storage.run({ setting: NO_TENANT }, fn);
}

/** Binds the open context (a request's) to a tenant or '*'. Outside a context it does nothing. */
export function bindRequestTenant(setting: string): void {
  const store = storage.getStore();
  if (store) store.setting = setting;
}

/** Express middleware: every request starts as nobody (fail closed until auth binds it). */
export function tenantRequestContext(_req: unknown, _res: unknown, next: () => void): void {
  runAsNobody(next);
}
