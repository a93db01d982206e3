import type { TaskState } from './task.types.js';

/**
 * The task state machine. Every write in TasksRepository is a compare-and-set whose
 * expected states come from here, so a transition not listed cannot happen.
 */
export const TRANSITIONS: Record<TaskState, readonly TaskState[]> = {
  pending: ['dispatched', 'running', 'cancelled'],
  dispatched: ['running', 'completed', 'failed', 'pending', 'cancelled', 'timed_out'],
  running: ['completed', 'failed', 'pending', 'cancelled', 'timed_out'],
  completed: ['pending'],
  failed: ['pending'],
  cancelled: ['pending'],
  timed_out: ['pending'],
};

export const TERMINAL_STATES: readonly TaskState[] = ['completed', 'failed', 'cancelled', 'timed_out'];
export const HELD_STATES: readonly TaskState[] = ['dispatched', 'running'];
export const ACTIVE_STATES: readonly TaskState[] = ['pending', 'dispatched', 'running'];

export function canTransition(from: TaskState, to: TaskState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States from which `to` can be reached: the `status = ANY(...)` of a compare-and-set. */
export function statesLeadingTo(to: TaskState): TaskState[] {
  return (Object.keys(TRANSITIONS) as TaskState[]).filter((from) => canTransition(from, to));
}

export const isTerminal = (state: TaskState): boolean => TERMINAL_STATES.includes(state);

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
