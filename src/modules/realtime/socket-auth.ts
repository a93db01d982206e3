import type { IncomingHttpHeaders } from 'node:http';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/app-config.js';
import { ANONYMOUS_ADMIN, type ApiKeyRole, mayAct, type Principal } from '../auth/api-key.types.js';
import type { ApiKeysService } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';

export interface HandshakeLike {
  auth?: unknown;
  headers: IncomingHttpHeaders;
  query: Record<string, unknown>;
}

/**
 * The same keys as REST for sockets: `auth.token`, an `Authorization: Bearer` header, or
 * `?token=`. Resolves to who it is (with its tenant: `tenantId`, `isGlobalAdmin`), or the error
 * to send before closing. With auth off every socket is the anonymous (global) admin, as on REST.
 */
export async function socketPrincipal(
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

/** socketPrincipal when only the refusal matters: undefined when allowed. */
export async function checkSocketAuth(
  h: HandshakeLike,
  keys: ApiKeysService,
  config: AppConfig,
  roles: ApiKeyRole[],
): Promise<AppError | undefined> {
  return (await socketPrincipal(h, keys, config, roles)).error;
}
