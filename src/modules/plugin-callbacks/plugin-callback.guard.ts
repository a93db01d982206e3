import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '../../common/errors.js';
import { bindRequestTenant } from '../../database/tenant-context.js';
import { clientAddress } from '../edge/client-address.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { type AdmittedCallback, PluginCallbacksService } from './plugin-callbacks.service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the JSON parser on /plugin-callback/* only: the body bytes the signature covers. */
    rawBody?: Buffer;
    /** Set by PluginCallbackGuard: who the callback is from. */
    pluginCallback?: AdmittedCallback;
  }
}

/**
 * Rate limit, then the plugin's own authentication, before anything reads the body. Plugin
 * names are per tenant: the task in the path says whose plugin this is, and the rest of the
 * request acts for that tenant (an unknown task stays with the system and fails as before).
 */
@Injectable()
export class PluginCallbackGuard implements CanActivate {
  constructor(
    private readonly callbacks: PluginCallbacksService,
    private readonly tenants: TenantsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const plugin = String(req.params.plugin);
    const taskId = String(req.params.taskId);
    const ip = clientAddress(req);
    try {
      await this.callbacks.limit(plugin, ip);
    } catch (e) {
      if (e instanceof AppError && e.code === ErrorCode.RATE_LIMITED) {
        context
          .switchToHttp()
          .getResponse<Response>()
          .setHeader('Retry-After', String(e.details?.retry_after_seconds ?? 60));
      }
      throw e;
    }
    const tenant = UUID.test(taskId) ? await this.tenants.tenantOfTask(taskId) : undefined;
    if (tenant !== undefined) bindRequestTenant(tenant);
    req.pluginCallback = await this.callbacks.authenticate({
      plugin,
      taskId,
      headers: req.headers,
      rawBody: req.rawBody ?? Buffer.alloc(0),
      ip,
    });
    return true;
  }
}
