import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config.js';
import { runAsSystem } from '../../../database/tenant-context.js';
import { BUDGET_DURATIONS, type ApiKeyLimits } from '../../auth/api-key.types.js';
import { ApiKeysService } from '../../auth/api-keys.service.js';
import { type LlmCaller, LlmQuotaGate, type LlmReservation, type LlmTokens } from '../llm-accounting.js';
import { LlmError } from '../llm-error.js';
import { LlmQuotaRepository, type QuotaLimits, type QuotaTaken } from './llm-quota.repository.js';
import { TenantLlmBudget } from './tenant-llm-budget.js';

/** A parallel slot outlives the longest request by this much before it counts as leaked. */
const SLOT_MARGIN_MS = 60_000;

const FREE: LlmReservation = { settle: () => Promise.resolve() };

function quotaLimits(limits: ApiKeyLimits): QuotaLimits | null {
  const { rpm, tpm, max_parallel, budget_tokens, budget_duration } = limits;
  if (rpm === undefined && tpm === undefined && max_parallel === undefined && budget_tokens === undefined) return null;
  return {
    rpm: rpm ?? null,
    tpm: tpm ?? null,
    maxParallel: max_parallel ?? null,
    budgetTokens: budget_tokens ?? null,
    budgetSeconds:
      budget_duration === undefined
        ? null
        : typeof budget_duration === 'number'
          ? budget_duration
          : BUDGET_DURATIONS[budget_duration],
  };
}

/**
 * Key quotas in PostgreSQL (docs/llm-accounting.md). Keys without limits pass without touching
 * the database (limits are cached by ApiKeysService); with limits, one atomic upsert reserves the
 * request, the estimated tokens and a parallel slot, or nothing, and settle() corrects the tokens
 * to what was used and frees the slot. A key's quota row is its own whatever tenant it acts for
 * (a global key with X-Tenant-Id): those statements run as the system. Before the key, the
 * budget of the tenant the call acts for (TenantLlmBudget).
 */
@Injectable()
export class PgQuotaGate extends LlmQuotaGate {
  private readonly logger = new Logger('LlmQuota');
  private readonly slotTtlMs: number;

  constructor(
    private readonly keys: ApiKeysService,
    private readonly repo: LlmQuotaRepository,
    private readonly tenantBudget: TenantLlmBudget,
    config: AppConfig,
  ) {
    super();
    const maxRequestMs = config.LLM_MAX_REQUEST_MS;
    this.slotTtlMs = maxRequestMs + SLOT_MARGIN_MS;
  }

  async reserve(caller: LlmCaller, model: string, estimatedTokens: number): Promise<LlmReservation> {
    await this.tenantBudget.check();
    if (caller.keyId === null) return FREE;
    const limits = await this.keys.limitsOf(caller.keyId);
    if (!limits) return FREE;
    if (limits.models && !limits.models.includes(model)) {
      throw new LlmError(
        403,
        'permission_error',
        `This API key may not use model '${model}'`,
        'model_not_allowed',
        'model',
      );
    }
    const quota = quotaLimits(limits);
    if (!quota) return FREE;
    const estimate = Math.max(0, Math.ceil(estimatedTokens));
    const slotId = randomUUID();
    const keyId = caller.keyId;
    const taken = await runAsSystem(() => this.repo.reserve(keyId, quota, estimate, slotId, this.slotTtlMs));
    if (!taken) throw await this.refusal(caller.keyId, quota, estimate);
    return this.reservation(caller.keyId, taken, estimate, slotId);
  }

  private reservation(keyId: string, taken: QuotaTaken, estimate: number, slotId: string): LlmReservation {
    let settled = false;
    return {
      settle: async (used: LlmTokens | null): Promise<void> => {
        if (settled) return;
        settled = true;
        // Nothing used: the tokens are refunded, the request stays counted.
        const actual = used ? Math.max(0, used.prompt_tokens) + Math.max(0, used.completion_tokens) : 0;
        try {
          await runAsSystem(() => this.repo.settle(keyId, taken, Math.round(actual) - estimate, slotId));
        } catch (e) {
          // The slot expires by itself; the call's answer must not fail over accounting.
          this.logger.error({ err: e, keyId }, 'LLM quota settle failed');
        }
      },
    };
  }

  /** Why a reservation was refused, read after the fact (the state may have moved on: then "busy, retry"). */
  private async refusal(keyId: string, quota: QuotaLimits, estimate: number): Promise<LlmError> {
    const now = await runAsSystem(() => this.repo.usage(keyId, quota.budgetSeconds));
    const retryWindow = Math.max(1, Math.ceil(now.window_reset_seconds));
    if (quota.budgetTokens !== null && now.budget_tokens + estimate > quota.budgetTokens) {
      const when =
        now.budget_reset_seconds === null
          ? 'it does not renew'
          : `it renews in ${Math.ceil(now.budget_reset_seconds)} s`;
      return new LlmError(
        429,
        'insufficient_quota',
        `Token budget exhausted: ${now.budget_tokens} of ${quota.budgetTokens} used, this call needs up to ${estimate}; ${when}`,
        'insufficient_quota',
        null,
        { shouldRetry: false },
      );
    }
    if (quota.maxParallel !== null && now.in_flight + 1 > quota.maxParallel) {
      return rateLimited('requests', `Too many parallel calls for this key (max_parallel ${quota.maxParallel})`, 1);
    }
    if (quota.rpm !== null && now.window_requests + 1 > quota.rpm) {
      return rateLimited('requests', `Rate limit reached: ${quota.rpm} requests per minute (rpm)`, retryWindow);
    }
    if (quota.tpm !== null && estimate > quota.tpm) {
      return new LlmError(
        429,
        'tokens',
        `This call needs up to ${estimate} tokens, more than the key's ${quota.tpm} tokens per minute (tpm)`,
        'rate_limit_exceeded',
        null,
        { shouldRetry: false },
      );
    }
    if (quota.tpm !== null && now.window_tokens + estimate > quota.tpm) {
      return rateLimited(
        'tokens',
        `Rate limit reached: ${quota.tpm} tokens per minute (tpm), ${now.window_tokens} used, this call needs up to ${estimate}`,
        retryWindow,
      );
    }
    return rateLimited('requests', 'Rate limit reached; retry shortly', 1);
  }
}

function rateLimited(type: 'requests' | 'tokens', message: string, retryAfterSeconds: number): LlmError {
  return new LlmError(429, type, message, 'rate_limit_exceeded', null, { retryAfterSeconds, shouldRetry: true });
}
