import { AppError } from '../../common/errors.js';

export const TASK_SORTS = ['created_at', 'priority', 'started_at', 'completed_at'] as const;
export type TaskSort = (typeof TASK_SORTS)[number];
export type SortOrder = 'asc' | 'desc';

/** Sorts whose column may be NULL (those rows come last, in id order). */
export const NULLABLE_SORTS: ReadonlySet<TaskSort> = new Set(['started_at', 'completed_at']);

/**
 * Where a page of `GET /api/v1/tasks` ended: the last row's sort key and id. The key is the
 * column as text without loss: whole microseconds since the epoch for a time, the number for a
 * priority, null for a row whose time is not set (the NULLS LAST tail).
 */
export interface TaskCursor {
  sort: TaskSort;
  order: SortOrder;
  key: string | null;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INTEGER = /^-?\d{1,19}$/;

/** Opaque to clients: base64url of a small JSON array. */
export function encodeCursor(c: TaskCursor): string {
  return Buffer.from(JSON.stringify([c.sort, c.order, c.key, c.id])).toString('base64url');
}

/**
 * The cursor a client sent back, checked against the list's own sort and order (a cursor from
 * another ordering would skip or repeat rows). Anything else is a 400 naming `cursor`.
 */
export function decodeCursor(raw: string, sort: TaskSort, order: SortOrder): TaskCursor {
  const invalid = (why: string): AppError => AppError.validation('cursor', `invalid cursor: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid('not one this list returned');
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) throw invalid('not one this list returned');
  const [s, o, key, id] = parsed as unknown[];
  if (s !== sort || o !== order) throw invalid('it belongs to another sort or order; start again without it');
  if (typeof id !== 'string' || !UUID.test(id)) throw invalid('not one this list returned');
  if (key === null) {
    if (!NULLABLE_SORTS.has(sort)) throw invalid('not one this list returned');
  } else if (typeof key !== 'string' || !INTEGER.test(key)) throw invalid('not one this list returned');
  return { sort, order, key, id };
}
