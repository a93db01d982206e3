import { Body, Controller, Delete, Get, Param, Put, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiEnvelope } from '../../common/api-envelope.decorator.js';
import { Authenticated } from '../auth/auth.decorators.js';
import type { LimitRow } from './concurrency.repository.js';
import { ConcurrencyService } from './concurrency.service.js';
import {
  ConcurrencyKeyParam,
  ConcurrencyLimitListView,
  ConcurrencyLimitView,
  ListConcurrencyLimitsQuery,
  PutConcurrencyLimitDto,
} from './dto/concurrency-limit.dto.js';

const mapLimit = (r: LimitRow): ConcurrencyLimitView => ({
  key: r.key,
  max_running: r.max_running,
  max_per_minute: r.max_per_minute,
  running: r.running,
  started_last_minute: r.started_last_minute,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** Limits per concurrency key (docs/flow-control.md); authorized like routing rules: admins change, clients and workers read. */
@ApiTags('concurrency')
@ApiNotFoundResponse({ description: 'NOT_FOUND' })
@Controller('api/v1/concurrency')
export class ConcurrencyController {
  constructor(private readonly concurrency: ConcurrencyService) {}

  @Get()
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: "The tenant's limits by key, with live counts; ?limit&after pages" })
  @ApiEnvelope(ConcurrencyLimitListView)
  async list(@Query() q: ListConcurrencyLimitsQuery): Promise<ConcurrencyLimitListView> {
    const limit = q.limit ?? 100;
    const rows = await this.concurrency.list(limit, q.after ?? null);
    return { limits: rows.map(mapLimit), next_after: rows.length === limit ? rows[rows.length - 1].key : null };
  }

  @Get(':key')
  @Authenticated('client', 'worker')
  @ApiOperation({ summary: "A key's limit with its live counts (running, started_last_minute)" })
  @ApiEnvelope(ConcurrencyLimitView)
  async get(@Param() { key }: ConcurrencyKeyParam): Promise<ConcurrencyLimitView> {
    return mapLimit(await this.concurrency.get(key));
  }

  @Put(':key')
  @Authenticated('admin')
  @ApiOperation({
    summary: 'Set the limits of a key (admin): both fields replaced; applies to the next pick on every hub',
  })
  @ApiEnvelope(ConcurrencyLimitView)
  async put(@Param() { key }: ConcurrencyKeyParam, @Body() dto: PutConcurrencyLimitDto): Promise<ConcurrencyLimitView> {
    return mapLimit(await this.concurrency.put(key, dto));
  }

  @Delete(':key')
  @Authenticated('admin')
  @ApiOperation({ summary: "Remove a key's limits (admin); answers the removed limit" })
  @ApiEnvelope(ConcurrencyLimitView)
  async remove(@Param() { key }: ConcurrencyKeyParam): Promise<ConcurrencyLimitView> {
    return mapLimit(await this.concurrency.remove(key));
  }
}
