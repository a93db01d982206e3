import { Injectable } from '@nestjs/common';
import { TaskQueriesRepository } from './task-queries.repository.js';

/** How many recent completions of a type make its estimate, and how long an estimate is reused. */
export const ESTIMATE_SAMPLE = 100;
export const ESTIMATE_TTL_MS = 10_000;

/**
 * How long a task of a given type is likely to run: the mean run time (start to completion) of
 * the last ESTIMATE_SAMPLE completed tasks of that type, or null with no history. One indexed
 * query per type, reused for ESTIMATE_TTL_MS so a burst of submissions costs one read.
 */
@Injectable()
export class DurationEstimates {
  private readonly cache = new Map<string, { ms: number | null; at: number }>();

  constructor(private readonly queries: TaskQueriesRepository) {}

  async forType(type: string): Promise<number | null> {
    const now = Date.now();
    const hit = this.cache.get(type);
    if (hit && now - hit.at < ESTIMATE_TTL_MS) return hit.ms;
    const ms = await this.queries.recentMeanRunMs(type, ESTIMATE_SAMPLE);
    if (this.cache.size > 1000) this.cache.clear(); // types are free strings: keep the cache bounded
    this.cache.set(type, { ms, at: now });
    return ms;
  }
}
