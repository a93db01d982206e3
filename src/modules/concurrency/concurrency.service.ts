import { Injectable } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { ConcurrencyRepository, type LimitRow } from './concurrency.repository.js';
import type { PutConcurrencyLimitDto } from './dto/concurrency-limit.dto.js';

/**
 * Limits per concurrency key. Nothing is cached: every pick reads the limits in its own SQL, so a
 * change applies to the next pick on every hub. A change may open room, so it wakes the round.
 */
@Injectable()
export class ConcurrencyService {
  constructor(
    private readonly repo: ConcurrencyRepository,
    private readonly events: EventBus,
  ) {}

  async put(key: string, dto: PutConcurrencyLimitDto): Promise<LimitRow> {
    if (dto.max_running === undefined && dto.max_per_minute === undefined)
      throw AppError.validation('max_running', 'give max_running or max_per_minute (or both)');
    const row = await this.repo.upsert(key, dto.max_running ?? null, dto.max_per_minute ?? null);
    this.events.publish('tasks.ready', { count: 1 });
    return row;
  }

  async get(key: string): Promise<LimitRow> {
    const row = await this.repo.find(key);
    if (!row) throw AppError.notFound('Concurrency limit', key);
    return row;
  }

  list(limit: number, after: string | null): Promise<LimitRow[]> {
    return this.repo.list(limit, after);
  }

  async remove(key: string): Promise<LimitRow> {
    const row = await this.repo.remove(key);
    if (!row) throw AppError.notFound('Concurrency limit', key);
    this.events.publish('tasks.ready', { count: 1 });
    return row;
  }
}
