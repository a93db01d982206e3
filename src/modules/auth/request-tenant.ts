import { DEFAULT_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { tenantNotFound, type TenantsService } from '../tenants/tenants.service.js';
import type { Principal } from './api-key.types.js';

/**
 * The tenant a request acts for (docs/tenants.md): a tenant key → its tenant; a global admin →
 * every tenant ('*'), or the one named by X-Tenant-Id. An unknown tenant, or a tenant key naming
 * another tenant, is TENANT_NOT_FOUND (404), never a 403: no existence leak.
 */
export async function requestTenant(
  who: Principal,
  header: string | string[] | undefined,
  tenants: Pick<TenantsService, 'exists'>,
): Promise<string> {
  const asked = (Array.isArray(header) ? header[0] : header)?.trim() || undefined;
  // A global key without the admin role cannot be made (ApiKeysController); held to default if found.
  const own = who.isGlobalAdmin ? SYSTEM_TENANT : (who.tenantId ?? DEFAULT_TENANT);
  if (asked === undefined) return own;
  if (who.isGlobalAdmin) {
    if (asked !== SYSTEM_TENANT && (await tenants.exists(asked))) return asked;
    throw tenantNotFound(asked);
  }
  if (asked === own) return own;
  throw tenantNotFound(asked);
}
