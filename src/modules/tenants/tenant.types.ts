/** Enforced by the rate-limit guard, the LLM quota gate and task intake (docs/tenants.md, Limits). */
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
