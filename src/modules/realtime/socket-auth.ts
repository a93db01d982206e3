import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'socket.io';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/app-config.js';
import { ANONYMOUS_ADMIN, type ApiKeyRole, mayAct, type Principal } from '../auth/api-key.types.js';
import type { ApiKeysService } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';
import { requestTenant } from '../auth/request-tenant.js';
import type { TenantsService } from '../tenants/tenants.service.js';
import type { EdgeChannel } from '../edge/edge-metrics.js';
import type { SocketIoGuard } from '../edge/socket-io-guard.js';

export interface HandshakeLike {
  auth?: unknown;
  headers: IncomingHttpHeaders;
  query: Record<string, unknown>;
}

/** A socket's caller, and the tenant setting its messages run under (docs/tenants.md, "Sockets"). */
export type SocketCaller =
  | { principal: Principal; tenant: string; error?: undefined }
  | { error: AppError; principal?: undefined; tenant?: undefined };

/**
 * The same keys as REST for sockets: `auth.token`, an `Authorization: Bearer` header, or
 * `?token=`. Resolves to who it is and the tenant it acts for, or the error to send before
 * closing. With auth off every socket is the anonymous (global) admin, as on REST.
 * The tenant is the key's; a global admin acts for every tenant (`*`), or for the one it names
 * as REST's `X-Tenant-Id` does: an `x-tenant-id` header, `auth.tenant_id` or `?tenant_id=`
 * (an unknown one, or a tenant key naming another tenant, is TENANT_NOT_FOUND).
 */
export async function socketPrincipal(
  h: HandshakeLike,
  keys: ApiKeysService,
  config: AppConfig,
  roles: ApiKeyRole[],
  tenants: Pick<TenantsService, 'exists'>,
): Promise<SocketCaller> {
  const found = await socketKey(h, keys, config, roles);
  if (found.error) return found;
  const auth = h.auth as { tenant_id?: unknown } | undefined;
  const named =
    h.headers['x-tenant-id'] ??
    (typeof auth?.tenant_id === 'string' ? auth.tenant_id : undefined) ??
    (typeof h.query.tenant_id === 'string' ? h.query.tenant_id : undefined);
  try {
    return { principal: found.principal, tenant: await requestTenant(found.principal, named, tenants) };
  } catch (e) {
    if (e instanceof AppError) return { error: e };
    throw e;
  }
}

async function socketKey(
  h: HandshakeLike,
  keys: ApiKeysService,
  config: AppConfig,
  roles: ApiKeyRole[],
): Promise<{ principal: Principal; error?: undefined } | { error: AppError; principal?: undefined }> {
  if (!config.AUTH_REQUIRED) return { principal: ANONYMOUS_ADMIN };
  const auth = h.auth as { token?: unknown } | undefined;
  const token =
    (typeof auth?.token === 'string' ? auth.token : undefined) ??
    bearerToken(h.headers.authorization) ??
    (typeof h.query.token === 'string' ? h.query.token : undefined);
  const principal = token ? await keys.verify(token) : undefined;
  if (!principal) {
    return {
      error: new AppError(
        ErrorCode.UNAUTHORIZED,
        token ? 'Invalid or revoked API key' : 'Missing API key (auth.token, Authorization header or token query)',
      ),
    };
  }
  if (!mayAct(principal, roles)) {
    return { error: new AppError(ErrorCode.FORBIDDEN, `This channel needs role ${['admin', ...roles].join(' or ')}`) };
  }
  return { principal };
}

/** What `callerMiddleware` leaves on `socket.data`. */
interface CallerData {
  caller?: SocketCaller;
}

/**
 * A namespace's middleware: resolves the socket's caller before it connects (kept on
 * `socket.data` for the gateway, see `connectedCaller`) and counts it against its key's
 * connections on `channel` (MAX_CONNECTIONS_PER_KEY): a key at its limit is refused with
 * `connect_error {code: RATE_LIMITED, details.field: 'key'}`. A refused key is not refused
 * here: the gateway answers it as it always has (`error` on the connected socket, then a
 * disconnect). When the key cannot be checked now (database down) the gateway asks again.
 */
export function callerMiddleware(
  channel: EdgeChannel,
  resolve: (h: HandshakeLike) => Promise<SocketCaller>,
  guard: Pick<SocketIoGuard, 'admitKey'>,
): (socket: Socket, next: (err?: Error) => void) => void {
  return (socket, next) => {
    resolve(socket.handshake).then(
      (caller) => {
        (socket.data as CallerData).caller = caller;
        next(caller.principal ? guard.admitKey(socket, channel, caller.principal.keyId) : undefined);
      },
      () => next(),
    );
  };
}

/**
 * The caller `callerMiddleware` resolved for this socket, or resolved now when it could not.
 * Read once: the socket does not keep it (the gateway keeps what it needs of it).
 */
export async function connectedCaller(
  socket: Socket,
  resolve: (h: HandshakeLike) => Promise<SocketCaller>,
): Promise<SocketCaller> {
  const data = socket.data as CallerData;
  const caller = data.caller;
  data.caller = undefined;
  return caller ?? resolve(socket.handshake);
}
