import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NULLABLE_SORTS, type SortOrder, type TaskCursor, type TaskSort } from './task-cursor.js';
import type { EventLevel, TaskEventRow, TaskRow, TaskState } from './task.types.js';

export interface TaskListFilter {
  /** Whose tasks: each (tenant, state) pair is read as one index range (migration 1765900000000). */
  tenants: readonly string[];
  states: readonly TaskState[];
  priorities?: number[];
  tag?: string;
  type?: string;
  workerId?: string;
  nodeId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  sort: TaskSort;
  order: SortOrder;
  limit: number;
  /** Rows to skip (page/offset clients); 0 with a cursor. */
  offset: number;
  /** Rows after this one (keyset). */
  cursor?: TaskCursor;
}

export interface EventFilter {
  since?: Date;
  levels?: EventLevel[];
  limit: number;
}

/** The sort key of a row as exact text (whole microseconds for times), and how to read it back. */
const KEY_TEXT: Record<TaskSort, string> = {
  created_at: `(extract(epoch FROM created_at) * 1000000)::bigint::text`,
  priority: `priority::text`,
  started_at: `(extract(epoch FROM started_at) * 1000000)::bigint::text`,
  completed_at: `(extract(epoch FROM completed_at) * 1000000)::bigint::text`,
};
const keyValue = (sort: TaskSort, p: string): string =>
  sort === 'priority' ? `${p}::smallint` : `(timestamptz 'epoch' + ${p}::bigint * interval '1 microsecond')`;

/**
 * Which rows of a nullable sort a query reads: `set` (the column has a value, in its order),
 * `unset` (NULLS LAST: those come after, in id order), or `all` (no order, for counting).
 */
type Part = 'set' | 'unset' | 'all';

type ListedRow = TaskRow & { cursor_key: string | null };

/** Read-only queries over tasks and their events: lists, logs and statistics. */
@Injectable()
export class TaskQueriesRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * One page of tasks and the cursor after it (null at the end). Never counts: a page reads
   * `offset + limit + 1` rows at most, merged from one ordered index range per (tenant, state),
   * whatever the size of the table. A nullable sort (started_at, completed_at) reads the rows
   * with a value first, then those without (NULLS LAST), each part from its own index.
   */
  async list(f: TaskListFilter): Promise<{ rows: TaskRow[]; next: TaskCursor | null }> {
    if (!f.tenants.length || !f.states.length) return { rows: [], next: null };
    const want = f.limit + 1;
    let rows: ListedRow[];
    if (!NULLABLE_SORTS.has(f.sort)) rows = await this.page(f, 'set', want, f.offset, f.cursor);
    else if (f.cursor && f.cursor.key === null) rows = await this.page(f, 'unset', want, 0, f.cursor);
    else {
      rows = await this.page(f, 'set', want, f.offset, f.cursor);
      if (rows.length < want) {
        // Past the rows with a value: skip what the offset has left after them (counted only up to the offset).
        const skip = rows.length > 0 || f.offset === 0 ? 0 : f.offset - (await this.countUpTo(f, 'set', f.offset));
        rows = rows.concat(await this.page(f, 'unset', want - rows.length, skip));
      }
    }
    const more = rows.length > f.limit;
    const page = rows.slice(0, f.limit);
    const last = page[page.length - 1];
    const next = more && last ? { sort: f.sort, order: f.order, key: last.cursor_key, id: last.id } : null;
    return { rows: page.map(({ cursor_key: _key, ...row }) => row as TaskRow), next };
  }

  /** How many tasks match, counting at most `cap` of them (a bounded read however many there are). */
  async countUpTo(f: TaskListFilter, part: Part, cap: number): Promise<number> {
    if (!f.tenants.length || !f.states.length || cap <= 0) return 0;
    const { sql, params } = this.union(f, part, cap, false);
    params.push(cap);
    const text = `SELECT count(*)::int AS n FROM (SELECT 1 FROM (${sql}) t LIMIT $${params.length}) c`;
    const [row] = await this.read<{ n: number }>(text, params);
    return row.n;
  }

  private async page(f: TaskListFilter, part: Part, limit: number, offset: number, after?: TaskCursor) {
    const { sql, params, order } = this.union(f, part, offset + limit, true, after);
    params.push(limit, offset);
    const text = `SELECT * FROM (${sql}) t ORDER BY ${order} LIMIT $${params.length - 1} OFFSET $${params.length}`;
    return this.read<ListedRow>(text, params);
  }

  /**
   * A list statement. Not prepared: a generic plan guesses a LIMIT parameter at a tenth of the
   * table and sorts every matching row instead of reading the index in order (Codex /tasks took
   * 480 ms at 200,000 tasks so). Planning each time costs 1–2 ms a branch, with two dozen indexes
   * and row-level security on tasks, which is why no branch is read for a state none of the
   * tenants listed has a task in (the service prunes them with the counters).
   */
  protected read<T>(text: string, params: unknown[]): Promise<T[]> {
    return this.db.query(text, params);
  }

  /**
   * The matching rows as a UNION ALL of one branch per (tenant, state), each at most `rows` long:
   * a branch is an equality prefix of a list index followed by the sort column, read in order
   * and stopped at its LIMIT, and the planner merges the branches (Merge Append). The LIMIT and
   * ORDER BY in each branch are what make it do so (a flattened UNION ALL gets a Sort of
   * everything instead). The explicit tenant_id predicate is what lets the index lead with it;
   * row-level security still applies on top.
   */
  private union(
    f: TaskListFilter,
    part: Part,
    rows: number,
    ordered: boolean,
    after?: TaskCursor,
  ): { sql: string; params: unknown[]; order: string } {
    const params: unknown[] = [];
    const p = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    const where: string[] = [];
    if (f.priorities?.length) where.push(`priority = ANY(${p(f.priorities)}::smallint[])`);
    if (f.tag) where.push(`tags @> ARRAY[${p(f.tag)}::text]`);
    if (f.type) where.push(`type = ${p(f.type)}`);
    if (f.workerId) where.push(`worker_id = ${p(f.workerId)}`);
    if (f.nodeId) where.push(`node_id = ${p(f.nodeId)}`);
    if (f.createdAfter) where.push(`created_at >= ${p(f.createdAfter)}`);
    if (f.createdBefore) where.push(`created_at < ${p(f.createdBefore)}`);
    const dir = f.order === 'asc' ? 'ASC' : 'DESC';
    const cmp = f.order === 'asc' ? '>' : '<';
    const col = f.sort; // from the DTO's whitelist
    let order = `${col} ${dir}, id ${dir}`;
    if (part === 'set') {
      if (NULLABLE_SORTS.has(f.sort)) where.push(`${col} IS NOT NULL`);
      if (after && after.key !== null)
        where.push(`(${col}, id) ${cmp} (${keyValue(f.sort, p(after.key))}, ${p(after.id)}::uuid)`);
    } else if (part === 'unset') {
      where.push(`${col} IS NULL`);
      if (after) where.push(`id ${cmp} ${p(after.id)}::uuid`);
      order = `id ${dir}`;
    }
    const tenants = f.tenants.map((t) => p(t));
    const states = f.states.map((s) => p(s));
    const extra = where.map((w) => ` AND ${w}`).join('');
    const tail = `${ordered ? ` ORDER BY ${order}` : ''} LIMIT ${p(rows)}`;
    const branch = (match: string): string =>
      `(SELECT *, ${KEY_TEXT[f.sort]} AS cursor_key FROM tasks WHERE ${match}${extra}${tail})`;
    const branches = tenants.flatMap((t) => states.map((s) => branch(`tenant_id = ${t} AND status = ${s}`)));
    return { sql: branches.join('\n UNION ALL '), params, order };
  }

  async events(taskId: string, f: EventFilter): Promise<TaskEventRow[]> {
    return this.db.query(
      `SELECT id, task_id, at, type, level, message, attempt, data FROM task_events
       WHERE task_id = $1 AND ($2::timestamptz IS NULL OR at > $2) AND ($3::text[] IS NULL OR level = ANY($3))
       ORDER BY id LIMIT $4`,
      [taskId, f.since ?? null, f.levels ?? null, f.limit],
    );
  }

  /** Mean start-to-completion time (ms) of the last `sample` completed tasks of `type` (IDX_tasks_completed_type), or null. */
  async recentMeanRunMs(type: string, sample: number): Promise<number | null> {
    const [row]: { ms: string | number | null }[] = await this.db.query(
      `SELECT avg(extract(epoch FROM r.completed_at - r.started_at) * 1000) AS ms FROM (
         SELECT started_at, completed_at FROM tasks
         WHERE status = 'completed' AND type = $1 AND started_at IS NOT NULL
         ORDER BY completed_at DESC LIMIT $2
       ) r`,
      [type, sample],
    );
    return row.ms === null ? null : Math.round(Number(row.ms));
  }
}
