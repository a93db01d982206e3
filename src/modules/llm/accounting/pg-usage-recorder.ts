import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Periodic } from '../../../common/periodic.js';
import { AppConfig } from '../../../config/app-config.js';
import { LlmUsageRecorder, type LlmUsageRecord } from '../llm-accounting.js';
import { LlmMetrics } from './llm-metrics.js';
import { LlmUsageRepository } from './llm-usage.repository.js';

/** Rows wait at most this long before their batch is written… */
const FLUSH_AFTER_MS = 100;
/** …or until this many are waiting. */
const FLUSH_AT_ROWS = 500;
const PRUNE_EVERY_MS = 60 * 60_000;

const int = (n: number | null): number | null =>
  n === null || !Number.isFinite(n) ? null : Math.max(0, Math.round(n));

/**
 * Usage rows in PostgreSQL, written in batches (one INSERT per ≤ FLUSH_AFTER_MS), and the LLM
 * Prometheus series. record() never throws and never waits: a failed batch is logged and dropped.
 * Rows older than LLM_USAGE_RETENTION_DAYS are pruned hourly (any hub may do it).
 */
@Injectable()
export class PgUsageRecorder extends LlmUsageRecorder implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('LlmUsage');
  private pending: LlmUsageRecord[] = [];
  private timer?: NodeJS.Timeout;
  private writing = new Set<Promise<void>>();
  private readonly pruner = new Periodic('llm usage prune', this.logger, () =>
    this.repo.prune(this.config.LLM_USAGE_RETENTION_DAYS),
  );

  constructor(
    private readonly repo: LlmUsageRepository,
    private readonly metrics: LlmMetrics,
    private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.pruner.start(PRUNE_EVERY_MS, true);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.pruner.stop();
    await this.flush();
  }

  record(row: LlmUsageRecord): void {
    try {
      this.metrics.observe(row);
      this.pending.push({
        ...row,
        prompt_tokens: int(row.prompt_tokens) ?? 0,
        completion_tokens: int(row.completion_tokens) ?? 0,
        ttft_ms: int(row.ttft_ms),
        duration_ms: int(row.duration_ms) ?? 0,
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
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) {
      const write = this.repo
        .insertMany(batch)
        .catch((e: unknown) => this.logger.error({ err: e }, `LLM usage: ${batch.length} rows not written`))
        .finally(() => this.writing.delete(write));
      this.writing.add(write);
    }
    await Promise.all([...this.writing]);
  }
}
