import { Injectable } from '@nestjs/common';
import { Counter, Histogram } from 'prom-client';
import { BoundedLabel } from '../../metrics/bounded-labels.js';
import { MetricsService } from '../../metrics/metrics.service.js';
import type { LlmUsageRecord } from '../llm-accounting.js';

/** Statuses that are the upstream's fault (an interrupt or a client that left is not). */
const UPSTREAM_FAILURES = new Set<LlmUsageRecord['status']>(['failed', 'timeout']);

/**
 * How many distinct (provider, model) pairs keep their model name as a label in this process;
 * later ones are `other`. Models are configuration, but the name recorded is the one the
 * deployment answered with, so the bound holds whatever an upstream says.
 */
export const LLM_MODEL_LABEL_LIMIT = 50;

/** The LLM gateway's Prometheus series, in the hub's registry (per process, fed by the usage recorder). */
@Injectable()
export class LlmMetrics {
  private readonly calls: Counter<'provider' | 'model' | 'status'>;
  private readonly tokens: Counter<'provider' | 'model' | 'kind'>;
  private readonly upstreamErrors: Counter<'provider' | 'model'>;
  private readonly cooldowns: Counter<'provider' | 'model'>;
  private readonly ttft: Histogram<'provider' | 'model'>;
  private readonly models = new BoundedLabel(LLM_MODEL_LABEL_LIMIT);

  constructor(metrics: MetricsService) {
    const registers = [metrics.registry];
    this.calls = new Counter({
      name: 'taskhub_llm_calls_total',
      help: 'Upstream LLM calls by outcome',
      labelNames: ['provider', 'model', 'status'],
      registers,
    });
    this.tokens = new Counter({
      name: 'taskhub_llm_tokens_total',
      help: 'LLM tokens used by provider, model and kind (prompt, completion)',
      labelNames: ['provider', 'model', 'kind'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'taskhub_llm_upstream_errors_total',
      help: 'Upstream LLM calls that failed or timed out',
      labelNames: ['provider', 'model'],
      registers,
    });
    this.cooldowns = new Counter({
      name: 'taskhub_llm_cooldowns_total',
      help: 'Deployments cooled down',
      labelNames: ['provider', 'model'],
      registers,
    });
    this.ttft = new Histogram({
      name: 'taskhub_llm_ttft_seconds',
      help: 'Time to the first content byte from the upstream (streamed calls), by provider and model',
      labelNames: ['provider', 'model'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers,
    });
  }

  observe(row: LlmUsageRecord): void {
    const labels = { provider: row.provider, model: this.models.of(row.model, row.provider) };
    this.calls.inc({ ...labels, status: row.status });
    if (row.prompt_tokens > 0) this.tokens.inc({ ...labels, kind: 'prompt' }, row.prompt_tokens);
    if (row.completion_tokens > 0) this.tokens.inc({ ...labels, kind: 'completion' }, row.completion_tokens);
    if (UPSTREAM_FAILURES.has(row.status)) this.upstreamErrors.inc(labels);
    if (row.ttft_ms !== null) this.ttft.observe(labels, row.ttft_ms / 1000);
  }

  cooledDown(provider: string, model: string): void {
    this.cooldowns.inc({ provider, model: this.models.of(model, provider) });
  }
}
