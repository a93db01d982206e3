import type { TaskState } from './task.types.js';

/**
 * The task state machine. Every write in the task repositories is a compare-and-set whose
 * expected states and target state come from here (through `transition`), so a transition not
 * listed cannot happen: a (from, to) pair missing from this table does not compile.
 * Writes that keep a state (a heartbeat or progress while running, a reply to an active task,
 * a re-delivery, a plugin wait re-armed) are not transitions: no state moves to itself here.
 */
export const TRANSITIONS = {
  pending: ['dispatched', 'running', 'cancelled'],
  dispatched: ['running', 'completed', 'failed', 'pending', 'cancelled', 'timed_out'],
  running: ['completed', 'failed', 'pending', 'cancelled', 'timed_out'],
  completed: ['pending'],
  failed: ['pending'],
  cancelled: ['pending'],
  timed_out: ['pending'],
} as const satisfies Record<TaskState, readonly TaskState[]>;

/** The states `From` may move to. */
export type TargetOf<From extends TaskState> = (typeof TRANSITIONS)[From][number];

/** The states that may move to `To`. */
export type SourceOf<To extends TaskState> = { [S in TaskState]: To extends TargetOf<S> ? S : never }[TaskState];

/** A transition the table allows: from any of `from` to `to`. */
export interface Transition<From extends TaskState, To extends TargetOf<From>> {
  readonly from: readonly From[];
  readonly to: To;
}

/**
 * Names a transition for a compare-and-set. Every state in `from` must lead to `to` in
 * TRANSITIONS, or the call does not compile (`transition('running', ['completed'])` is an error).
 */
export function transition<To extends TaskState, const From extends SourceOf<To>>(
  to: To,
  from: readonly From[],
): Transition<From, To & TargetOf<From>> {
  return { from, to: to as To & TargetOf<From> };
}

/** The typed state names, for writes that set a state (`S.completed`), never a bare string. */
export const S = {
  pending: 'pending',
  dispatched: 'dispatched',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  timed_out: 'timed_out',
} as const satisfies { [K in TaskState]: K };

export const TERMINAL_STATES = [
  'completed',
  'failed',
  'cancelled',
  'timed_out',
] as const satisfies readonly TaskState[];
export const HELD_STATES = ['dispatched', 'running'] as const satisfies readonly TaskState[];
export const UNFINISHED_STATES = ['pending', ...HELD_STATES] as const satisfies readonly TaskState[];

export const isTerminal = (state: TaskState): boolean => (TERMINAL_STATES as readonly TaskState[]).includes(state);
export const isHeld = (state: TaskState): boolean => (HELD_STATES as readonly TaskState[]).includes(state);

export function canTransition(from: TaskState, to: TaskState): boolean {
  return (TRANSITIONS[from] as readonly TaskState[]).includes(to);
}

/** States from which `to` can be reached: the `status = ANY(...)` of a compare-and-set. */
export function statesLeadingTo(to: TaskState): TaskState[] {
  return (Object.keys(TRANSITIONS) as TaskState[]).filter((from) => canTransition(from, to));
}

/** `status IN (…)` list text for fixed state sets (prepared statements keep one text). */
export const sqlStates = (states: readonly TaskState[]): string => states.map((s) => `'${s}'`).join(', ');

/** Seed 002 (Task Orchestrator) names: `waiting` = pending/dispatched, `working` = running. */
export type OrchestratorStatus = 'waiting' | 'working' | 'completed' | 'failed' | 'cancelled' | 'timed_out';

export function toOrchestratorStatus(state: TaskState): OrchestratorStatus {
  if (state === 'pending' || state === 'dispatched') return 'waiting';
  if (state === 'running') return 'working';
  return state;
}

const STATUS_ALIASES: Record<string, readonly TaskState[]> = {
  waiting: ['pending', 'dispatched'],
  working: ['running'],
  queued: ['pending'],
  active: ['pending', 'dispatched', 'running'],
};

/**
 * Parses a `status` filter (comma list of states or seed aliases).
 * Returns the states, or the first unknown name.
 */
export function parseStatusFilter(value: string): { states: TaskState[] } | { unknown: string } {
  const states = new Set<TaskState>();
  for (const raw of value.split(',')) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    const alias = STATUS_ALIASES[name];
    if (alias) alias.forEach((s) => states.add(s));
    else if ((Object.keys(TRANSITIONS) as string[]).includes(name)) states.add(name as TaskState);
    else return { unknown: raw.trim() };
  }
  return { states: [...states] };
}
