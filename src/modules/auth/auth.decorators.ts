import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request } from 'express';
import type { ApiKeyRole, Principal } from './api-key.types.js';

export const PUBLIC_ROUTE = 'taskhub:public';
export const REQUIRED_ROLES = 'taskhub:roles';
export const GLOBAL_ADMIN_ROUTE = 'taskhub:global-admin';
export const METRICS_TOKEN_ROUTE = 'taskhub:metrics-token';

/**
 * Open to anyone (health, docs; docs/security.md). A valid key sent anyway sets the principal
 * (`@CurrentPrincipal()`) and the tenant the route counts for; no key, or a bad one, leaves the
 * principal unset: the route then shows only what anyone may see (no counts, no tenant names).
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * Besides the keys `@Authenticated` lets in, `Authorization: Bearer <METRICS_TOKEN>` (when that
 * setting is set) passes too, acting for the whole hub: a Prometheus scraper needs no API key.
 */
export const MetricsToken = (): MethodDecorator & ClassDecorator => SetMetadata(METRICS_TOKEN_ROUTE, true);

/**
 * Needs a key with one of these roles (admin always passes); also documents it in OpenAPI.
 * The roles are required: an admin-only route says `@Authenticated('admin')`, so no route is
 * admin-only (or open to any key) by leaving the list out.
 */
export const Authenticated = (...roles: [ApiKeyRole, ...ApiKeyRole[]]): MethodDecorator & ClassDecorator => {
  const allowed = [...new Set<ApiKeyRole>(['admin', ...roles])];
  return applyDecorators(
    SetMetadata(REQUIRED_ROLES, roles),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'UNAUTHORIZED: missing, unknown or revoked key' }),
    ApiForbiddenResponse({ description: `FORBIDDEN: needs role ${allowed.join(' or ')}` }),
  );
};

/**
 * Hub-wide state (runtime settings): only a global admin key (docs/tenants.md) may act. A
 * tenant's admin gets 403 FORBIDDEN: the route names no tenant's resource, so that shows nothing.
 */
export const GlobalAdmin = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(GLOBAL_ADMIN_ROUTE, true),
    ApiForbiddenResponse({ description: 'FORBIDDEN: needs a global admin key (a tenant admin may not)' }),
  );

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Principal | undefined => ctx.switchToHttp().getRequest<Request>().principal,
);
