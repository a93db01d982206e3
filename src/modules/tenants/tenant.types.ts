/** Enforced by the rate-limit guard, the LLM quota gate, task intake and retention (docs/tenants.md, Limits). */
export interface TenantLimits {
  rate_limit_per_minute?: number;
  llm_budget_tokens?: number;
  max_tasks?: number;
  /** Its share of capacity several tenants use (shared devices, global pull workers, gateway slots); default 1. */
  weight?: number;
  /** Overrides TASK_RETENTION / TASK_RETENTION_MAX_FINISHED for this tenant (docs/retention.md). */
  retention?: TenantRetention;
}

export interface TenantRetention {
  /** A duration (`3d`, `12h`, seconds; `0`/`off`: never by age). */
  age?: string;
  /** Finished tasks kept at most; 0: no count bound. */
  max_finished?: number;
}

export interface TenantRow {
  id: string;
  name: string;
  limits: TenantLimits;
  created_at: Date;
}
