import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../../common/errors.js';
import { isAdmin, type Principal } from '../../auth/api-key.types.js';
import type { LlmUsageQuery } from './dto/llm-usage.dto.js';
import {
  LlmUsageRepository,
  type UsageBucketRow,
  type UsageFilter,
  type UsageInterval,
} from './llm-usage.repository.js';

const DEFAULT_SPAN_MS = 24 * 3600_000;
const BUCKET_MS: Record<UsageInterval, number> = { minute: 60_000, hour: 3600_000, day: 86_400_000 };
/** A query spans at most this many buckets (about a week of minutes). */
const MAX_BUCKETS = 10_080;

export interface UsageReport {
  filter: UsageFilter;
  rows: UsageBucketRow[];
  totals: { calls: number; errors: number; prompt_tokens: number; completion_tokens: number };
}

/** GET /api/v1/llm/usage: who may see what, defaults and bounds; the rollup is the repository's. */
@Injectable()
export class LlmUsageService {
  constructor(private readonly repo: LlmUsageRepository) {}

  async report(q: LlmUsageQuery, principal: Principal | undefined): Promise<UsageReport> {
    let keyId = q.key_id;
    if (principal && !isAdmin(principal)) {
      if (keyId !== undefined && keyId !== principal.keyId) {
        throw new AppError(ErrorCode.FORBIDDEN, 'A non-admin key sees only its own usage', { field: 'key_id' });
      }
      keyId = principal.keyId ?? undefined;
    }
    const interval = q.interval ?? 'minute';
    const until = q.until ? new Date(q.until) : new Date();
    const since = q.since ? new Date(q.since) : new Date(until.getTime() - DEFAULT_SPAN_MS);
    if (since.getTime() >= until.getTime()) throw AppError.validation('since', 'since must be before until');
    if ((until.getTime() - since.getTime()) / BUCKET_MS[interval] > MAX_BUCKETS) {
      throw AppError.validation(
        'interval',
        `at most ${MAX_BUCKETS} buckets per query: use a larger interval or a shorter since..until`,
      );
    }
    const filter: UsageFilter = { keyId, model: q.model, since, until, interval };
    const rows = await this.repo.rollup(filter);
    const totals = { calls: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0 };
    for (const r of rows) {
      totals.calls += r.calls;
      totals.errors += r.errors;
      totals.prompt_tokens += r.prompt_tokens;
      totals.completion_tokens += r.completion_tokens;
    }
    return { filter, rows, totals };
  }
}
