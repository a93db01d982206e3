import {
  canTransition,
  HELD_STATES,
  isHeld,
  isTerminal,
  parseStatusFilter,
  S,
  statesLeadingTo,
  toOrchestratorStatus,
  transition,
  type Transition,
  TRANSITIONS,
  TERMINAL_STATES,
} from '../../src/modules/tasks/task-state.js';
import { TASK_STATES, type TaskState } from '../../src/modules/tasks/task.types.js';

/** Every (from, to) pair the hub may write (18); the other 31 of the 49 are refused. */
const ALLOWED: [TaskState, TaskState][] = [
  ['pending', 'dispatched'],
  ['pending', 'running'],
  ['pending', 'cancelled'],
  ['dispatched', 'running'],
  ['dispatched', 'completed'],
  ['dispatched', 'failed'],
  ['dispatched', 'pending'],
  ['dispatched', 'cancelled'],
  ['dispatched', 'timed_out'],
  ['running', 'completed'],
  ['running', 'failed'],
  ['running', 'pending'],
  ['running', 'cancelled'],
  ['running', 'timed_out'],
  ['completed', 'pending'],
  ['failed', 'pending'],
  ['cancelled', 'pending'],
  ['timed_out', 'pending'],
];
const allowed = new Set(ALLOWED.map(([f, t]) => `${f}>${t}`));
const ALL_PAIRS = TASK_STATES.flatMap((from) =>
  TASK_STATES.map((to) => [from, to, allowed.has(`${from}>${to}`)] as const),
);

describe('task state machine', () => {
  it.each([
    ['pending', 'dispatched', true],
    ['pending', 'running', true],
    ['pending', 'cancelled', true],
    ['pending', 'completed', false],
    ['dispatched', 'running', true],
    ['running', 'completed', true],
    ['running', 'pending', true],
    ['running', 'timed_out', true],
    ['completed', 'running', false],
    ['completed', 'cancelled', false],
    ['cancelled', 'pending', true],
    ['failed', 'completed', false],
  ] as const)('%s → %s allowed: %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });

  it('covers all 49 (from, to) pairs', () => {
    expect(ALL_PAIRS).toHaveLength(49);
    expect(ALL_PAIRS.filter(([, , ok]) => ok)).toHaveLength(ALLOWED.length);
  });

  it.each(ALL_PAIRS)('pair %s → %s allowed: %s', (from, to, ok) => {
    expect(canTransition(from, to)).toBe(ok);
    expect(statesLeadingTo(to).includes(from)).toBe(ok);
    // transition() checks the pair at compile time only; at run time it just names it.
    if (ok) expect(transition(to, [from] as never[])).toEqual({ from: [from], to });
  });

  it('no state moves to itself (a write that keeps the state is not a transition)', () => {
    for (const s of TASK_STATES) expect(canTransition(s, s)).toBe(false);
  });

  it('names transitions whose pairs are in the table, and refuses the others at compile time', () => {
    const complete: Transition<'dispatched' | 'running', 'completed'> = transition(S.completed, HELD_STATES);
    expect(complete).toEqual({ from: ['dispatched', 'running'], to: 'completed' });
    expect(transition(S.pending, TERMINAL_STATES).from).toEqual(['completed', 'failed', 'cancelled', 'timed_out']);
    // @ts-expect-error completed → running is not in TRANSITIONS
    transition(S.running, [S.completed]);
    // @ts-expect-error one refused source (pending → completed) spoils the whole list
    transition(S.completed, [S.running, S.pending]);
    // @ts-expect-error cancelled → cancelled is not a transition
    const self: Transition<'cancelled', 'cancelled'> = { from: ['cancelled'], to: 'cancelled' };
    expect(self.to).toBe('cancelled');
  });

  it('classifies held and finished states', () => {
    expect(TASK_STATES.filter(isHeld)).toEqual([...HELD_STATES]);
    expect(TASK_STATES.filter(isTerminal)).toEqual([...TERMINAL_STATES]);
  });

  it('has an entry for every state and only known targets', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...TASK_STATES].sort());
    for (const targets of Object.values(TRANSITIONS)) {
      for (const t of targets) expect(TASK_STATES).toContain(t);
    }
  });

  it('terminal states only lead back to pending (manual retry or reply)', () => {
    for (const s of TERMINAL_STATES) expect(TRANSITIONS[s]).toEqual(['pending']);
  });

  it('computes the expected states of a compare-and-set', () => {
    expect(statesLeadingTo('cancelled').sort()).toEqual(['dispatched', 'pending', 'running']);
    expect(statesLeadingTo('completed').sort()).toEqual(['dispatched', 'running']);
    expect(statesLeadingTo('pending').sort()).toEqual([
      'cancelled',
      'completed',
      'dispatched',
      'failed',
      'running',
      'timed_out',
    ]);
  });

  it('maps states to the seed 002 vocabulary', () => {
    expect(toOrchestratorStatus('pending')).toBe('waiting');
    expect(toOrchestratorStatus('dispatched')).toBe('waiting');
    expect(toOrchestratorStatus('running')).toBe('working');
    expect(toOrchestratorStatus('completed')).toBe('completed');
    expect(toOrchestratorStatus('timed_out')).toBe('timed_out');
  });

  it('parses status filters with aliases and rejects unknown names', () => {
    expect(parseStatusFilter('waiting,working')).toEqual({ states: ['pending', 'dispatched', 'running'] });
    expect(parseStatusFilter(' completed , FAILED ')).toEqual({ states: ['completed', 'failed'] });
    expect(parseStatusFilter('queued')).toEqual({ states: ['pending'] });
    expect(parseStatusFilter("completed,'; DROP TABLE tasks;--")).toEqual({ unknown: "'; DROP TABLE tasks;--" });
  });
});
