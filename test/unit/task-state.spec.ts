import {
  canTransition,
  parseStatusFilter,
  statesLeadingTo,
  toOrchestratorStatus,
  TRANSITIONS,
  TERMINAL_STATES,
} from '../../src/modules/tasks/task-state.js';
import { TASK_STATES } from '../../src/modules/tasks/task.types.js';

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
