import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config.js';
import {
  currentTenantSetting,
  NO_TENANT,
  runWithTenantSetting,
  SYSTEM_TENANT,
} from '../../../database/tenant-context.js';
import { untilShort } from '../../retention/retention-policy.js';
import { RetentionRegistry } from '../../retention/retention-registry.js';
import { LlmUsageRecorder, type LlmUsageRecord } from '../llm-accounting.js';
import { LlmMetrics } from './llm-metrics.js';
import { LlmUsageRepository } from './llm-usage.repository.js';

/** Rows wait at most this long before their batch is written… */
const FLUSH_AFTER_MS = 100;
/** …or until this many are waiting. */
const FLUSH_AT_ROWS = 500;

const int = (n: number | null): number | null =>
  n === null || !Number.isFinite(n) ? null : Math.max(0, Math.round(n));

/**
 * Usage rows in PostgreSQL, written in batches (one INSERT per ≤ FLUSH_AFTER_MS), and the LLM
 * Prometheus series. record() never throws and never waits: a failed batch is logged and dropped.
 * Rows older than LLM_USAGE_RETENTION_DAYS are removed by the retention cleaner (docs/retention.md).
 * A batch mixes callers: each row keeps the tenant context it was recorded in and is written
 * under it (one INSERT per context), so a call lands in the tenant it acted for and counts
 * against that tenant's budget; the system's rows take their key's (or node's) tenant.
 */
@Injectable()
export class PgUsageRecorder extends LlmUsageRecorder implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('LlmUsage');
  private pending: { row: LlmUsageRecord; tenant: string }[] = [];
  private timer?: NodeJS.Timeout;
  private writing = new Set<Promise<void>>();

  constructor(
    private readonly repo: LlmUsageRepository,
    private readonly metrics: LlmMetrics,
    private readonly config: AppConfig,
    private readonly retention: RetentionRegistry,
  ) {
    super();
  }

  onModuleInit(): void {
    this.retention.register({
      name: 'llm_usage',
      batches: (limit) => {
        const days = this.config.LLM_USAGE_RETENTION_DAYS;
        return untilShort('llm_usage', limit, async () => ({ n: await this.repo.prune(days, limit) }));
      },
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  record(row: LlmUsageRecord): void {
    try {
      this.metrics.observe(row);
      this.pending.push({
        row: {
          ...row,
          prompt_tokens: int(row.prompt_tokens) ?? 0,
          completion_tokens: int(row.completion_tokens) ?? 0,
          ttft_ms: int(row.ttft_ms),
          duration_ms: int(row.duration_ms) ?? 0,
        },
        // No tenant bound (should not happen on an authenticated route): the key's tenant, as the system.
        tenant: currentTenantSetting() === NO_TENANT ? SYSTEM_TENANT : currentTenantSetting(),
      });
      if (this.pending.length >= FLUSH_AT_ROWS) void this.flush();
      else if (!this.timer) {
        this.timer = setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
        this.timer.unref();
      }
    } catch (e) {
      this.logger.error({ err: e }, 'LLM usage record failed');
    }
  }

  cooledDown(provider: string, model: string, reason: string): void {
    this.metrics.cooledDown(provider, model);
    this.logger.warn(`LLM deployment ${provider}/${model} cooled down: ${reason}`);
  }

  /** Writes what is waiting, and waits for every batch still being written. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const byTenant = new Map<string, LlmUsageRecord[]>();
    for (const { row, tenant } of this.pending) {
      const group = byTenant.get(tenant);
      if (group) group.push(row);
      else byTenant.set(tenant, [row]);
    }
    this.pending = [];
    for (const [tenant, batch] of byTenant) {
      const write = runWithTenantSetting(tenant, () => this.repo.insertMany(batch))
        .catch((e: unknown) => this.logger.error({ err: e }, `LLM usage: ${batch.length} rows not written`))
        .finally(() => this.writing.delete(write));
      this.writing.add(write);
    }
    await Promise.all([...this.writing]);
  }
}
