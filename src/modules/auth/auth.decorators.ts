import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request } from 'express';
import type { ApiKeyRole, Principal } from './api-key.types.js';

export const PUBLIC_ROUTE = 'taskhub:public';
export const REQUIRED_ROLES = 'taskhub:roles';

/** Open to anyone (health, docs). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

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

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Principal | undefined => ctx.switchToHttp().getRequest<Request>().principal,
);
