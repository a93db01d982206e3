import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request } from 'express';
import type { ApiKeyRole, Principal } from './api-key.types.js';

export const PUBLIC_ROUTE = 'taskhub:public';
export const REQUIRED_ROLES = 'taskhub:roles';

/** Open to anyone (health, docs). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/** Needs a key with one of these roles (admin always passes); also documents it in OpenAPI. */
export const Authenticated = (...roles: ApiKeyRole[]): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(REQUIRED_ROLES, roles),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'UNAUTHORIZED: missing, unknown or revoked key' }),
    ApiForbiddenResponse({ description: `FORBIDDEN: needs role ${['admin', ...roles].join(' or ')}` }),
  );

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Principal | undefined => ctx.switchToHttp().getRequest<Request>().principal,
);
