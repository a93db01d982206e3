import type { TenantView } from './dto/tenant.dto.js';
import type { TenantRow } from './tenant.types.js';

export function mapTenant(row: TenantRow): TenantView {
  return { id: row.id, name: row.name, limits: row.limits, created_at: row.created_at.toISOString() };
}
