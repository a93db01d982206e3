import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AppConfig } from '../../config/app-config.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { bindRequestTenant, DEFAULT_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { ANONYMOUS_ADMIN, type ApiKeyRole, mayAct, type Principal } from './api-key.types.js';
import { ApiKeysService } from './api-keys.service.js';
import { GLOBAL_ADMIN_ROUTE, METRICS_TOKEN_ROUTE, PUBLIC_ROUTE, REQUIRED_ROLES } from './auth.decorators.js';
import { requestTenant } from './request-tenant.js';

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** Constant-time equality of a presented secret and the configured one (digests: equal lengths, no length leak). */
export function sameSecret(presented: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return expected.length > 0 && timingSafeEqual(digest(presented), digest(expected));
}

/** Global guard: every route needs a key unless marked @Public(); roles from @Authenticated('admin'). */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
    private readonly config: AppConfig,
    private readonly tenants: TenantsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    const req = context.switchToHttp().getRequest<Request>();
    // Open routes (health, status, plugin callbacks, which find their task's tenant) act as the
    // system, or for the tenant of a key the caller sends anyway (its /status and /healthz counts).
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) {
      const { principal, tenant } = await this.openRouteCaller(req);
      req.principal = principal;
      bindRequestTenant(tenant);
      return true;
    }
    if (!this.config.AUTH_REQUIRED) {
      req.principal = ANONYMOUS_ADMIN;
      bindRequestTenant(await requestTenant(ANONYMOUS_ADMIN, askedTenant(req), this.tenants));
      return true;
    }
    const token = bearerToken(req.headers.authorization);
    const scrape = this.reflector.getAllAndOverride<boolean>(METRICS_TOKEN_ROUTE, targets) === true;
    if (!token)
      throw new AppError(
        ErrorCode.UNAUTHORIZED,
        `Missing Authorization: Bearer <api key${scrape ? ' or METRICS_TOKEN' : ''}>`,
      );
    // The scrape token acts for the whole hub, as no one in particular (no principal).
    if (scrape && this.config.METRICS_TOKEN && sameSecret(token, this.config.METRICS_TOKEN)) {
      bindRequestTenant(SYSTEM_TENANT);
      return true;
    }
    const principal = await this.keys.verify(token);
    if (!principal) throw new AppError(ErrorCode.UNAUTHORIZED, 'Invalid or revoked API key');
    req.principal = principal;
    bindRequestTenant(await requestTenant(principal, askedTenant(req), this.tenants));
    // A route that declares no roles fails closed: admin only (test/e2e/auth-roles pins that every route declares them).
    const roles = this.reflector.getAllAndOverride<ApiKeyRole[] | undefined>(REQUIRED_ROLES, targets) ?? ['admin'];
    if (!mayAct(principal, roles)) {
      const allowed = [...new Set<ApiKeyRole>(['admin', ...roles])];
      throw new AppError(ErrorCode.FORBIDDEN, `This action needs role ${allowed.join(' or ')}`);
    }
    if (this.reflector.getAllAndOverride<boolean>(GLOBAL_ADMIN_ROUTE, targets) && !principal.isGlobalAdmin)
      throw new AppError(ErrorCode.FORBIDDEN, 'This action changes the whole hub: it needs a global admin key');
    return true;
  }

  /**
   * An open route never refuses: no key or a bad one → no principal, as the system; X-Tenant-Id
   * it may not use → the key's own tenant. With auth off the caller is the anonymous admin.
   */
  private async openRouteCaller(req: Request): Promise<{ principal?: Principal; tenant: string }> {
    if (!this.config.AUTH_REQUIRED) return { principal: ANONYMOUS_ADMIN, tenant: SYSTEM_TENANT };
    const token = bearerToken(req.headers.authorization);
    const principal = token ? await this.keys.verify(token).catch(() => undefined) : undefined;
    if (!principal) return { tenant: SYSTEM_TENANT };
    const own = principal.isGlobalAdmin ? SYSTEM_TENANT : (principal.tenantId ?? DEFAULT_TENANT);
    return { principal, tenant: await requestTenant(principal, askedTenant(req), this.tenants).catch(() => own) };
  }
}

/**
 * The tenant a request names: `X-Tenant-Id`, or seed 001's `tenantId` / `familyId` in a JSON
 * body ("在请求中携带 familyId、tenantId 等字段以实现隔离"). The body fields are taken out, so
 * the routes' DTOs never see them.
 */
function askedTenant(req: Request): string | string[] | undefined {
  const header = req.headers['x-tenant-id'];
  const body = req.body as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) return header;
  let named: string | undefined;
  for (const field of ['tenantId', 'familyId']) {
    if (typeof body[field] === 'string') named ??= body[field] as string;
    if (field in body) delete body[field];
  }
  return header ?? named;
}
