import { Injectable } from '@nestjs/common';
import { ConcurrencyRepository } from '../concurrency/concurrency.repository.js';
import { AppError } from '../../common/errors.js';
import { currentTenantSetting, NO_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import type { ListTasksQuery, StatisticsQuery, TaskLogsQuery } from './dto/list-tasks.query.js';
import { isTerminal, parseStatusFilter } from './task-state.js';
import { type StatisticsRows, TaskCountsRepository } from './task-counts.repository.js';
import { decodeCursor, encodeCursor } from './task-cursor.js';
import { type TaskListFilter, TaskQueriesRepository } from './task-queries.repository.js';
import { TaskWaiters } from './task-waiters.js';
import {
  EVENT_LEVELS,
  PRIORITIES,
  PRIORITY_VALUE,
  type PriorityName,
  TASK_STATES,
  type TaskEventRow,
  type TaskRow,
  type TaskState,
} from './task.types.js';
import { TasksRepository } from './tasks.repository.js';

/** A filtered list counts at most this many matching rows for its `total` (docs/http-api.md). */
export const TOTAL_CAP = 10_000;

export interface TaskPage {
  rows: TaskRow[];
  /** Exact from the counters, or the capped count (at most TOTAL_CAP) when `totalCapped`. */
  total: number;
  totalCapped: boolean;
  limit: number;
  offset: number;
  hasMore: boolean;
  nextCursor: string | null;
}

const noTasks = (): Record<TaskState, number> => ({
  pending: 0,
  dispatched: 0,
  running: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  timed_out: 0,
});

/** Reads of tasks: one task (or its end), lists, logs, statistics, counts for status and health. */
@Injectable()
export class TaskQueriesService {
  constructor(
    private readonly repo: TasksRepository,
    private readonly queries: TaskQueriesRepository,
    private readonly counts: TaskCountsRepository,
    private readonly waiters: TaskWaiters,
    private readonly concurrency: ConcurrencyRepository,
  ) {}

  /**
   * The keys at a limit now among these tasks' (pending ones only), for their views' `waiting_on`:
   * one lookup for a page, none when no pending task on it has a key.
   */
  async heldKeysOf(rows: TaskRow[]): Promise<Set<string>> {
    const keys = new Map<string, { tenant_id: string; key: string }>();
    for (const r of rows)
      if (r.status === 'pending' && r.concurrency_key)
        keys.set(`${r.tenant_id}\n${r.concurrency_key}`, { tenant_id: r.tenant_id, key: r.concurrency_key });
    return keys.size ? this.concurrency.heldKeys([...keys.values()]) : new Set();
  }

  async get(id: string): Promise<TaskRow> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Task', id);
    return row;
  }

  /**
   * The task, once it is finished or `waitSeconds` have passed (whichever comes first); at once
   * without `waitSeconds`. `signal` aborts the wait (the client went away).
   */
  async getWhenFinished(id: string, waitSeconds: number | undefined, signal?: AbortSignal): Promise<TaskRow> {
    if (!waitSeconds) return this.get(id);
    // The waiter first, then the read: a finish in between still wakes it.
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const finished = this.waiters.wait(id, waitSeconds * 1000, ac.signal);
      const current = await this.get(id).catch((e: unknown) => {
        ac.abort();
        throw e;
      });
      if (isTerminal(current.status)) {
        ac.abort();
        return current;
      }
      const row = await finished;
      if (row || signal?.aborted) return row ?? current;
      return (await this.repo.findById(id).catch(() => undefined)) ?? current;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A page of tasks without counting the table (docs/http-api.md, "Lists"): rows by keyset
   * (`cursor`) or `offset`; `total` exact from the counters when the filter is at most status
   * and priority, else a count that stops at TOTAL_CAP (`totalCapped` says it stopped).
   */
  async list(q: ListTasksQuery): Promise<TaskPage> {
    let states: TaskState[] = [...TASK_STATES];
    if (q.status) {
      const parsed = parseStatusFilter(q.status);
      if ('unknown' in parsed) throw AppError.validation('status', `unknown status: ${parsed.unknown}`);
      states = parsed.states;
    }
    let priorities: number[] | undefined;
    if (q.priority) {
      priorities = [];
      for (const name of q.priority
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        if (!(PRIORITIES as readonly string[]).includes(name))
          throw AppError.validation('priority', `unknown priority: ${name}`);
        priorities.push(PRIORITY_VALUE[name as PriorityName]);
      }
    }
    const sort = q.sort ?? 'created_at';
    const order = q.order ?? 'desc';
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor, sort, order);
    if (cursor && offset > 0) throw AppError.validation('offset', 'offset cannot be combined with cursor');

    // Whose tasks: the caller's tenant, or (the system, a global admin) every tenant that has any.
    const counts = await this.counts.all();
    const setting = currentTenantSetting();
    const tenants =
      setting === NO_TENANT
        ? []
        : setting === SYSTEM_TENANT
          ? [...new Set(counts.map((c) => c.tenant_id))].sort()
          : [setting];
    // States none of these tenants has a task in are not read at all (a branch less to plan).
    const present = new Set(counts.filter((c) => tenants.includes(c.tenant_id)).map((c) => c.status));
    const filter: TaskListFilter = {
      tenants,
      states: states.filter((s) => present.has(s)),
      priorities,
      tag: q.tag,
      type: q.type,
      workerId: q.worker_id,
      nodeId: q.node_id,
      createdAfter: q.created_after ? new Date(q.created_after) : undefined,
      createdBefore: q.created_before ? new Date(q.created_before) : undefined,
      sort,
      order,
      limit,
      offset,
      cursor,
    };
    const countable = !q.tag && !q.type && !q.worker_id && !q.node_id && !q.created_after && !q.created_before;
    const [{ rows, next }, counted] = await Promise.all([
      this.queries.list(filter),
      countable ? undefined : this.queries.countUpTo(filter, 'all', TOTAL_CAP + 1),
    ]);
    let total: number;
    if (counted === undefined) {
      total = 0;
      for (const c of counts)
        if (
          tenants.includes(c.tenant_id) &&
          states.includes(c.status) &&
          (!priorities || priorities.includes(c.priority))
        )
          total += c.n;
    } else total = Math.min(counted, TOTAL_CAP);
    return {
      rows,
      total,
      totalCapped: counted !== undefined && counted > TOTAL_CAP,
      limit,
      offset,
      hasMore: next !== null,
      nextCursor: next && encodeCursor(next),
    };
  }

  /** Tasks (of the caller's tenant) in the states a `status` filter names, from the counters. */
  async countInStatus(status: string): Promise<number> {
    const parsed = parseStatusFilter(status);
    if ('unknown' in parsed) throw AppError.validation('status', `unknown status: ${parsed.unknown}`);
    return this.counts.total(parsed.states);
  }

  async logs(id: string, q: TaskLogsQuery): Promise<TaskEventRow[]> {
    const levels = q.level ? EVENT_LEVELS.slice(EVENT_LEVELS.indexOf(q.level)) : undefined;
    const events = await this.queries.events(id, {
      since: q.since ? new Date(q.since) : undefined,
      levels,
      limit: q.limit ?? 200,
    });
    if (events.length === 0) await this.get(id); // 404 for an unknown task, [] for a quiet one
    return events;
  }

  async statistics(q: StatisticsQuery): Promise<StatisticsRows & { periodHours: number }> {
    const match = /^(\d{1,4})([hd])$/.exec(q.period ?? '24h');
    if (!match) throw AppError.validation('period', 'period must look like 24h or 7d');
    const periodHours = Number(match[1]) * (match[2] === 'd' ? 24 : 1);
    if (periodHours < 1 || periodHours > 90 * 24)
      throw AppError.validation('period', 'period must be between 1h and 90d');
    const interval = q.interval ?? 'hour';
    const buckets = periodHours * (interval === 'minute' ? 60 : interval === 'hour' ? 1 : 1 / 24);
    if (buckets > 5000)
      throw AppError.validation('interval', 'too many points: use a longer interval or a shorter period');
    const [rows, finished, series] = await Promise.all([
      this.counts.all(),
      this.counts.finishedSummary(periodHours),
      this.counts.finishedSeries(periodHours, interval),
    ]);
    const counts: StatisticsRows['counts'] = {
      total: 0,
      ...noTasks(),
      p_low: 0,
      p_medium: 0,
      p_high: 0,
      p_urgent: 0,
      avg_processing_ms: finished.avgRunMs,
      completed_in_period: finished.completedInPeriod,
    };
    const byPriority = ['p_low', 'p_medium', 'p_high', 'p_urgent'] as const;
    for (const r of rows) {
      counts.total += r.n;
      counts[r.status] += r.n;
      const p = byPriority[r.priority];
      if (p) counts[p] += r.n;
    }
    return { counts, series, periodHours };
  }

  /** The tasks a node holds (dispatched or running), oldest hand-out first. */
  heldBy(nodeId: string): Promise<TaskRow[]> {
    return this.repo.heldBy(nodeId);
  }

  /** What a node finished over its life and holds now (counters, not its history). */
  nodeStats(nodeId: string): Promise<{ completed: number; failed: number; held: number }> {
    return this.counts.ofNode(nodeId);
  }

  /** Tasks in each state, every state present (0 when none), of the caller's tenant (all as the system). */
  async countByStatus(): Promise<Record<TaskState, number>> {
    const counts = noTasks();
    for (const c of await this.counts.all()) counts[c.status] += c.n;
    return counts;
  }

  /** Tasks in each state per tenant (every state present), as far as the caller sees: the system sees all. */
  async countByTenantAndStatus(): Promise<Map<string, Record<TaskState, number>>> {
    const byTenant = new Map<string, Record<TaskState, number>>();
    for (const c of await this.counts.all()) {
      let counts = byTenant.get(c.tenant_id);
      if (!counts) byTenant.set(c.tenant_id, (counts = noTasks()));
      counts[c.status] += c.n;
    }
    return byTenant;
  }

  /** Tasks handed out right now (dispatched or running), across the hub. */
  countActive(): Promise<number> {
    return this.repo.countActive();
  }

  /** When the next delayed or backed-off task becomes ready. */
  nextRunAt(): Promise<Date | null> {
    return this.repo.nextRunAt();
  }

  /** Ready tasks waiting for a holder (the queue size of /health). */
  countReady(): Promise<number> {
    return this.counts.ready();
  }
}
