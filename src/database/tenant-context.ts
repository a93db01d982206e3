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

/**
 * The one async-local store of the hub (one store: each AsyncLocalStorage costs every async
 * resource a copy). Besides the tenant setting it carries who the work is for, so logs and spans
 * need no argument passed by hand (src/common/call-context.ts reads these):
 *   requestId    the HTTP request's X-Request-Id, or the id of the socket message being handled
 *   traceparent  the W3C context new work continues (the request's span, or the caller's header)
 * Mutable so the auth guard can bind the tenant of a request that opened as "none".
 */
export interface CallStore {
  setting: string;
  requestId: string | undefined;
  traceparent: string | undefined;
  /** The caller's W3C `tracestate`, passed on with the traceparent. */
  tracestate?: string;
}

const storage = new AsyncLocalStorage<CallStore>();

/** A new store with `setting`, keeping the request id and trace of the one it is opened in. */
function within(setting: string): CallStore {
  const outer = storage.getStore();
  return { setting, requestId: outer?.requestId, traceparent: outer?.traceparent, tracestate: outer?.tracestate };
}

export function runAsTenant<T>(tenantId: string, fn: () => T): T {
  return storage.run(within(tenantId), fn);
}

export function runAsSystem<T>(fn: () => T): T {
  return storage.run(within(SYSTEM_TENANT), fn);
}

/** Runs `fn` under a setting as read from currentTenantSetting() (to carry a caller's context along). */
export function runWithTenantSetting<T>(setting: string, fn: () => T): T {
  return storage.run(within(setting), fn);
}

/**
 * Runs `fn(...args)` as one request or message: its tenant setting, id and trace context. The
 * arguments pass through (AsyncLocalStorage.run's own), so a hot path can hand a shared function
 * its per-message values instead of making a closure per message.
 */
export function runAsCall<A extends unknown[], T>(store: CallStore, fn: (...args: A) => T, ...args: A): T {
  return storage.run(store, fn, ...args);
}

/** The open call's store (undefined outside any: background work). Read-only by convention. */
export function currentCall(): Readonly<CallStore> | undefined {
  return storage.getStore();
}

/** The value for `taskhub.tenant_id`: '*' outside any context. */
export function currentTenantSetting(): string {
  return storage.getStore()?.setting ?? SYSTEM_TENANT;
}

/** Opens a request's context as "none"; `bindRequestTenant` fills it in once the caller is known. */
export function runAsNobody<T>(fn: () => T): T {
  return storage.run(within(NO_TENANT), fn);
}

/** Binds the open context (a request's) to a tenant or '*'. Outside a context it does nothing. */
export function bindRequestTenant(setting: string): void {
  const store = storage.getStore();
  if (store) store.setting = setting;
}

/**
 * Express middleware: every request starts as nobody (fail closed until auth binds it), with
 * its request id and trace context (set on `req` by the middlewares before the body parser).
 */
export function tenantRequestContext(
  req: { requestId?: string; traceparent?: string; tracestate?: string },
  _res: unknown,
  next: () => void,
): void {
  storage.run(
    { setting: NO_TENANT, requestId: req.requestId, traceparent: req.traceparent, tracestate: req.tracestate },
    next,
  );
}
