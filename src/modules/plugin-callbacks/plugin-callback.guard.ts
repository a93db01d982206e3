import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '../../common/errors.js';
import { type AdmittedCallback, PluginCallbacksService } from './plugin-callbacks.service.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the JSON parser on /plugin-callback/* only: the body bytes the signature covers. */
    rawBody?: Buffer;
    /** Set by PluginCallbackGuard: who the callback is from. */
    pluginCallback?: AdmittedCallback;
  }
}

/** Rate limit, then the plugin's own authentication, before anything reads the body. */
@Injectable()
export class PluginCallbackGuard implements CanActivate {
  constructor(private readonly callbacks: PluginCallbacksService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const plugin = String(req.params.plugin);
    const taskId = String(req.params.taskId);
    const ip = req.ip ?? 'unknown';
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
