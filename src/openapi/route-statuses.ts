import { type INestApplication, RequestMethod } from '@nestjs/common';
import { HTTP_CODE_METADATA, METHOD_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import { ModulesContainer } from '@nestjs/core';
import type { OpenAPIObject, OperationObject } from '@nestjs/swagger';

type Handler = (...args: unknown[]) => unknown;

/** Whether the handler writes the response itself (`@Res()` without passthrough): it sets the status. */
function writesResponse(controller: object, method: string): boolean {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller.constructor, method) ?? {}) as Record<
    string,
    { data?: unknown; pipes?: unknown }
  >;
  return Object.keys(args).some((k) => k.startsWith(`${RouteParamtypes.RESPONSE}:`) && !hasPassthrough(args[k]));
}
const hasPassthrough = (arg: { data?: unknown }): boolean =>
  typeof arg.data === 'object' && arg.data !== null && (arg.data as { passthrough?: boolean }).passthrough === true;

function operations(document: OpenAPIObject): Map<string, OperationObject> {
  const byId = new Map<string, OperationObject>();
  for (const item of Object.values(document.paths))
    for (const op of Object.values(item as Record<string, unknown>))
      if (typeof op === 'object' && op !== null && 'operationId' in op)
        byId.set((op as OperationObject).operationId as string, op as OperationObject);
  return byId;
}

/**
 * Routes whose documented success statuses miss the one Nest sends (`@HttpCode`, else 201 for
 * POST and 200 for the rest). Handlers that write the response themselves are skipped.
 */
export function statusMismatches(app: INestApplication, document: OpenAPIObject): string[] {
  const byId = operations(document);
  const found: string[] = [];
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const proto = (wrapper.metatype as { prototype?: Record<string, unknown> } | null)?.prototype;
      if (!proto) continue;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const handler = proto[name] as Handler;
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined || writesResponse(proto, name)) continue;
        const op = byId.get(`${proto.constructor.name}_${name}`);
        if (!op) continue; // excluded from the document
        const sent =
          (Reflect.getMetadata(HTTP_CODE_METADATA, handler) as number | undefined) ??
          (method === RequestMethod.POST ? 201 : 200);
        if (!(String(sent) in (op.responses ?? {})))
          found.push(`${op.operationId}: sends ${sent}, documents ${Object.keys(op.responses ?? {}).join(' ')}`);
      }
    }
  }
  return found;
}
