import { createHash } from 'node:crypto';
import { formatTraceparent, parseTraceparent } from './traceparent.js';

/**
 * A task's spans (docs/observability.md, "Traces"), one chain per attempt:
 *
 *   intake ── dispatch ── delivery ── run ── completion
 *
 * The task stores the context of its intake span (`tasks.traceparent`, made at submit as a child
 * of the request's). Every later span's id is derived from it, the attempt and the step, so
 * whichever hub records a step (the one that dispatched, the one holding the device's socket, the
 * one a result reached) names its parent without asking the others. The device is handed the run
 * span's context: the spans it makes of its own work nest under the hub's view of that run.
 */
export type TaskStep = 'dispatch' | 'delivery' | 'run' | 'completion';

export function taskSpanId(intakeSpanId: string, attempt: number, step: TaskStep): string {
  const id = createHash('sha1').update(`${intakeSpanId}:${attempt}:${step}`).digest('hex').slice(0, 16);
  return id === '0000000000000000' ? '0000000000000001' : id;
}

/** The context of one step of a task's attempt, or undefined for a task without one. */
export function taskStepTraceparent(
  traceparent: string | null | undefined,
  attempt: number,
  step: TaskStep,
): string | undefined {
  const intake = parseTraceparent(traceparent);
  if (!intake) return undefined;
  return formatTraceparent({ ...intake, spanId: taskSpanId(intake.spanId, attempt, step) });
}

/** The parent of each step: the one before it in the chain. */
export const PARENT_STEP: Record<TaskStep, TaskStep | 'intake'> = {
  dispatch: 'intake',
  delivery: 'dispatch',
  run: 'delivery',
  completion: 'run',
};
