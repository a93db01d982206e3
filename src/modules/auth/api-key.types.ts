export const API_KEY_ROLES = ['admin', 'client', 'worker'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

export interface ApiKeyRow {
  id: string;
  name: string;
  role: ApiKeyRole;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** Who is calling: the key's id and role (or the anonymous admin when auth is off). */
export interface Principal {
  keyId: string | null;
  name: string;
  role: ApiKeyRole;
}
