import type { HolderDto } from './dto/worker.dto.js';
import { isHeld } from './task-state.js';
import type { TaskRow } from './task.types.js';

// How a report that lost its compare-and-set is recognised as one already applied.

/** Is this finished row the work of the reporting holder (and attempt, when it says which)? */
export function sameReporter(row: TaskRow, holder: HolderDto): boolean {
  const by = holder.worker_id;
  return (
    (by === undefined || by === row.node_id || by === row.worker_id) &&
    (holder.attempt === undefined || holder.attempt === row.attempt)
  );
}

/** The failure of this holder's attempt was already applied (the task moved on because of it). */
export function isRepeatedFailure(row: TaskRow, holder: HolderDto): boolean {
  if (isHeld(row.status)) return false;
  const e = row.error as { attempt?: unknown; holder?: unknown } | null;
  if (!e || e.attempt !== row.attempt) return false;
  return (
    (holder.worker_id === undefined || holder.worker_id === e.holder) &&
    (holder.attempt === undefined || holder.attempt === e.attempt)
  );
}

/** Equal as stored JSON (object key order ignored as jsonb ignores it; undefined members are not stored). */
export function sameJson(stored: unknown, reported: unknown): boolean {
  return jsonEqual(stored, JSON.parse(JSON.stringify(reported ?? null)));
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
