import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { PARENT_STEP, type TaskStep, taskSpanId, taskStepTraceparent } from '../../common/tracing/task-spans.js';
import { parseTraceparent } from '../../common/tracing/traceparent.js';
import {
  type Attributes,
  endWithError,
  type Span,
  SpanKind,
  startSpan,
  tracingEnabled,
} from '../../common/tracing/tracer.js';
import { priorityName, type TaskRow } from './task.types.js';

/** Wall-clock milliseconds with the monotonic clock's resolution (span start and end times). */
export const spanClock = (): number => performance.timeOrigin + performance.now();

const taskAttributes = (task: TaskRow): Attributes => ({
  'taskhub.task.id': task.id,
  'taskhub.task.type': task.type,
  'taskhub.task.priority': priorityName(task.priority),
  'taskhub.task.attempt': task.attempt,
  'taskhub.tenant.id': task.tenant_id,
});

/**
 * The intake span of a task just inserted: a child of the submitting call's context, with the
 * id the task stored (`tasks.traceparent`), so every later span of the task hangs under it.
 */
export function traceIntake(task: TaskRow, startedAt: number, parent: string | undefined, tracestate?: string): void {
  const own = parseTraceparent(task.traceparent);
  if (!own) return;
  const span = startSpan('task.intake', {
    parent,
    parentTracestate: tracestate,
    spanId: own.spanId,
    kind: SpanKind.PRODUCER,
    startTime: startedAt,
    attributes: { ...taskAttributes(task), 'taskhub.task.status': task.status },
  });
  span?.end(spanClock());
}

/**
 * The rest of a task's spans (src/common/tracing/task-spans.ts), made from its lifecycle events
 * and the times its row carries, on the hub where each event happens. Registered only when
 * tracing is on: with it off, the hub pays nothing per task.
 *   dispatch    ready (run_at) → handed to a node or worker (the round or intake that assigned it)
 *   delivery    handed out → running (the node's ack or first report; a pull worker's is instant)
 *   run         running → the attempt's end, as the node reported it
 *   completion  the attempt's end → its outcome committed and announced
 */
@Injectable()
export class TaskTracing implements OnModuleInit, OnApplicationShutdown {
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly events: EventBus) {}

  onModuleInit(): void {
    if (!tracingEnabled()) return;
    this.unsubscribe = [
      this.events.on('task.assigned', ({ task }) => this.dispatched(task, 'node')),
      this.events.on('task.started', ({ task }) => this.dispatched(task, 'worker')),
      this.events.on('task.completed', ({ task }) => this.ended(task, 'completed')),
      this.events.on('task.failed', ({ task, retrying }) => this.ended(task, retrying ? 'retrying' : task.status)),
      this.events.on('task.cancelled', ({ task }) => this.ended(task, 'cancelled')),
    ];
  }

  onApplicationShutdown(): void {
    this.unsubscribe.forEach((u) => u());
  }

  private dispatched(task: TaskRow, to: 'node' | 'worker'): void {
    const handedAt = task.dispatched_at ?? task.started_at;
    if (!handedAt) return;
    const readyAt = Math.max(task.run_at.getTime(), task.created_at.getTime());
    const holder: Attributes =
      to === 'node'
        ? { 'taskhub.node.id': task.node_id ?? undefined }
        : { 'taskhub.worker.id': task.worker_id ?? undefined };
    this.step(task, 'dispatch', Math.min(readyAt, handedAt.getTime()), handedAt.getTime(), {
      ...holder,
      'taskhub.dispatch.to': to,
      'taskhub.dispatch.queue_wait_ms': Math.max(0, handedAt.getTime() - readyAt),
    })?.end(handedAt);
  }

  private ended(task: TaskRow, outcome: string): void {
    const handedAt = task.dispatched_at ?? task.started_at;
    const endedAt = (task.completed_at ?? task.cancelled_at ?? task.updated_at).getTime();
    const holder: Attributes = {
      'taskhub.node.id': task.node_id ?? undefined,
      'taskhub.worker.id': task.worker_id ?? undefined,
    };
    if (handedAt) {
      // Never handed out (cancelled while pending): only the completion span.
      const runningAt = Math.min(Math.max((task.started_at ?? handedAt).getTime(), handedAt.getTime()), endedAt);
      this.step(task, 'delivery', handedAt.getTime(), runningAt, holder)?.end(runningAt);
      const run = this.step(
        task,
        'run',
        runningAt,
        endedAt,
        { ...holder, 'taskhub.task.outcome': outcome },
        SpanKind.CONSUMER,
      );
      if (run) this.finish(run, task, outcome, endedAt);
    }
    const done = this.step(
      task,
      'completion',
      endedAt,
      endedAt,
      { 'taskhub.task.outcome': outcome },
      SpanKind.INTERNAL,
      !handedAt,
    );
    if (done) this.finish(done, task, outcome, Math.max(endedAt, spanClock()));
  }

  private finish(span: Span, task: TaskRow, outcome: string, at: number): void {
    if (outcome === 'completed' || outcome === 'cancelled') span.end(at);
    else endWithError(span, outcome, errorMessage(task.error), at);
  }

  /** One step's span, a child of the step before it in the same attempt (intake for dispatch). */
  private step(
    task: TaskRow,
    step: TaskStep,
    start: number,
    _end: number,
    attributes: Attributes,
    kind: SpanKind = SpanKind.INTERNAL,
    underIntake = false,
  ): Span | undefined {
    const own = parseTraceparent(task.traceparent);
    if (!own) return undefined;
    const parentStep = underIntake ? 'intake' : PARENT_STEP[step];
    const parent =
      parentStep === 'intake' ? task.traceparent : taskStepTraceparent(task.traceparent, task.attempt, parentStep);
    return startSpan(`task.${step}`, {
      parent,
      parentTracestate: task.tracestate,
      spanId: taskSpanId(own.spanId, task.attempt, step),
      kind,
      startTime: start,
      attributes: { ...taskAttributes(task), ...attributes },
    });
  }
}

function errorMessage(error: unknown): string | undefined {
  if (typeof error === 'string') return error.slice(0, 200);
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message.slice(0, 200);
  return undefined;
}
