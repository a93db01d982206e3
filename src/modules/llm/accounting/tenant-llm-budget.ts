import { Injectable } from '@nestjs/common';
import { currentTenantSetting, NO_TENANT, runAsSystem, SYSTEM_TENANT } from '../../../database/tenant-context.js';
import { TenantsService } from '../../tenants/tenants.service.js';
import { LlmError } from '../llm-error.js';
import { LlmUsageRepository } from './llm-usage.repository.js';

/** A tenant's `llm_budget_tokens` covers its calls of any rolling window of this many days. */
export const TENANT_BUDGET_DAYS = 30;

/**
 * `limits.llm_budget_tokens` (docs/tenants.md, Limits): the tokens a tenant's calls used in the
 * last TENANT_BUDGET_DAYS, summed from `llm_usage`; once they reach the budget, calls acting for
 * that tenant are refused with OpenAI's 429 `insufficient_quota` until older use leaves the
 * window. A call is let through while anything is left (the one that crosses the budget
 * completes), and calls in flight are not counted yet: the budget may be passed by those.
 */
@Injectable()
export class TenantLlmBudget {
  constructor(
    private readonly tenants: TenantsService,
    private readonly usage: LlmUsageRepository,
  ) {}

  /** Throws the 429 when the tenant the call acts for has used its budget. */
  async check(): Promise<void> {
    const tenantId = currentTenantSetting();
    // The system and a global admin acting for no tenant are held to no tenant's budget.
    if (tenantId === SYSTEM_TENANT || tenantId === NO_TENANT) return;
    const budget = (await this.tenants.limitsOf(tenantId)).llm_budget_tokens;
    if (budget === undefined) return;
    const used = await runAsSystem(() => this.usage.tenantTokensSince(tenantId, TENANT_BUDGET_DAYS));
    if (used < budget) return;
    throw new LlmError(
      429,
      'insufficient_quota',
      `Tenant token budget exhausted: ${used} of ${budget} tokens used in the last ${TENANT_BUDGET_DAYS} days`,
      'insufficient_quota',
      null,
      { shouldRetry: false },
    );
  }
}
