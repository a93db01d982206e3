/** Stored now, enforced in the next part of issue 15 (docs/tenants.md). */
export interface TenantLimits {
  rate_limit_per_minute?: number;
  llm_budget_tokens?: number;
  max_tasks?: number;
}

export interface TenantRow {
  id: string;
  name: string;
  limits: TenantLimits;
  created_at: Date;
}
