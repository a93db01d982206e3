export const API_KEY_ROLES = ['admin', 'client', 'worker'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/** Periods a token budget may be given in (or a number of seconds). */
export const BUDGET_DURATIONS = { '1h': 3600, '1d': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 } as const;
export type BudgetDuration = keyof typeof BUDGET_DURATIONS | number;

/** Optional LLM limits of a key (docs/llm-accounting.md); a key without limits is unlimited. */
export interface ApiKeyLimits {
  rpm?: number;
  tpm?: number;
  max_parallel?: number;
  budget_tokens?: number;
  budget_duration?: BudgetDuration;
  models?: string[];
}

/** Limits as given: a null field is no limit (and removes it in a PATCH). */
export type ApiKeyLimitsInput = { [K in keyof ApiKeyLimits]?: ApiKeyLimits[K] | null };

export interface ApiKeyRow {
  id: string;
  name: string;
  /** The first of `roles`. */
  role: ApiKeyRole;
  roles: ApiKeyRole[];
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  limits: ApiKeyLimits | null;
  /** null: a global key (global admins only). */
  tenant_id: string | null;
}

/** Who is calling: the key's id, roles and tenant (or the anonymous admin when auth is off). */
export interface Principal {
  keyId: string | null;
  name: string;
  /** The first of `roles`. */
  role: ApiKeyRole;
  roles: ApiKeyRole[];
  /** The key's tenant; null for a global key. */
  tenantId: string | null;
  /** A global key with the admin role: acts for every tenant, or one named by X-Tenant-Id. */
  isGlobalAdmin: boolean;
}

/** Who calls when AUTH_REQUIRED=false: a global admin. */
export const ANONYMOUS_ADMIN: Principal = {
  keyId: null,
  name: 'anonymous',
  role: 'admin',
  roles: ['admin'],
  tenantId: null,
  isGlobalAdmin: true,
};

export const isAdmin = (p: Pick<Principal, 'roles'>): boolean => p.roles.includes('admin');

/** Admins pass every role check; anyone else needs one of `roles`. */
export const mayAct = (p: Pick<Principal, 'roles'>, roles: readonly ApiKeyRole[]): boolean =>
  isAdmin(p) || roles.some((r) => p.roles.includes(r));
