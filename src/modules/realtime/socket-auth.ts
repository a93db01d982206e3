import type { IncomingHttpHeaders } from 'node:http';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/app-config.js';
import type { ApiKeyRole } from '../auth/api-key.types.js';
import type { ApiKeysService } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';

export interface HandshakeLike {
  auth?: unknown;
  headers: IncomingHttpHeaders;
  query: Record<string, unknown>;
}

/**
 * The same keys as REST for sockets: `auth.token`, an `Authorization: Bearer` header, or
 * `?token=`. Resolves to undefined when allowed, or the error to send before closing.
 */
export async function checkSocketAuth(
  h: HandshakeLike,
  keys: ApiKeysService,
  config: AppConfig,
  roles: ApiKeyRole[],
): Promise<AppError | undefined> {
  if (!config.AUTH_REQUIRED) return undefined;
  const auth = h.auth as { token?: unknown } | undefined;
  const token =
    (typeof auth?.token === 'string' ? auth.token : undefined) ??
    bearerToken(h.headers.authorization) ??
    (typeof h.query.token === 'string' ? h.query.token : undefined);
  const principal = token ? await keys.verify(token) : undefined;
  if (!principal) {
    return new AppError(ErrorCode.UNAUTHORIZED, token ? 'Invalid or revoked API key' : 'Missing API key (auth.token, Authorization header or token query)');
  }
  if (principal.role !== 'admin' && !roles.includes(principal.role)) {
    return new AppError(ErrorCode.FORBIDDEN, `This channel needs role ${['admin', ...roles].join(' or ')}`);
  }
  return undefined;
}
