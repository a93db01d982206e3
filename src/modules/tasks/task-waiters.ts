import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { runAsSystem } from '../../database/tenant-context.js';
import type { TaskRow } from './task.types.js';
import { TasksRepository } from './tasks.repository.js';

/** How often the tasks waited on here are looked up, for those finished by another hub process. */
const RECHECK_MS = 1000;

type Wake = (row: TaskRow | undefined) => void;

/**
 * Requests waiting for tasks to finish (`GET /api/v1/tasks/:id?wait_seconds=N`). Woken by this
 * process's task events at once; and, while anyone waits, every RECHECK_MS by one query over all
 * waited ids (a task may finish on another hub). No timer runs when nobody waits.
 */
@Injectable()
export class TaskWaiters implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TaskWaiters');
  private readonly waiting = new Map<string, Set<Wake>>();
  private timer?: NodeJS.Timeout;
  private checking = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly events: EventBus,
    private readonly repo: TasksRepository,
  ) {}

  onModuleInit(): void {
    this.unsubscribe.push(
      this.events.on('task.completed', ({ task }) => this.wake(task)),
      this.events.on('task.failed', ({ task, retrying }) => {
        if (!retrying) this.wake(task);
      }),
      this.events.on('task.cancelled', ({ task }) => this.wake(task)),
      // Draining: waiting requests answer now rather than hold the drain up.
      this.events.on('hub.shutdown', () => this.wakeAll()),
    );
  }

  /**
   * Waits up to `ms` for task `id` to finish: resolves with its finished row, or undefined when
   * the time is up or `signal` aborts (the client went away). The waiter is gone either way.
   */
  wait(id: string, ms: number, signal?: AbortSignal): Promise<TaskRow | undefined> {
    return new Promise((resolve) => {
      const done: Wake = (row) => {
        clearTimeout(timeout);
        signal?.removeEventListener('abort', abort);
        this.remove(id, done);
        resolve(row);
      };
      const abort = (): void => done(undefined);
      const timeout = setTimeout(abort, ms);
      timeout.unref();
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      let set = this.waiting.get(id);
      if (!set) this.waiting.set(id, (set = new Set()));
      set.add(done);
      this.timer ??= setInterval(() => void this.recheck(), RECHECK_MS).unref();
    });
  }

  /** The tasks some request of this process waits on (retention leaves them alone). */
  waitedIds(): string[] {
    return [...this.waiting.keys()];
  }

  /** How many requests wait right now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }

  private remove(id: string, wake: Wake): void {
    const set = this.waiting.get(id);
    if (!set) return;
    set.delete(wake);
    if (set.size === 0) this.waiting.delete(id);
    if (this.waiting.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private wake(row: TaskRow): void {
    const set = this.waiting.get(row.id);
    if (set) for (const wake of [...set]) wake(row);
  }

  /** Every waiter answers now with the task as it is. */
  private wakeAll(): void {
    for (const set of [...this.waiting.values()]) for (const wake of [...set]) wake(undefined);
  }

  private async recheck(): Promise<void> {
    if (this.checking || this.waiting.size === 0) return;
    this.checking = true;
    try {
      // As the system: the interval runs in whichever request's context started it, and every id
      // here was already checked against its own waiter's tenant.
      const finished = await runAsSystem(() => this.repo.findFinished([...this.waiting.keys()]));
      for (const row of finished) this.wake(row);
    } catch (e) {
      this.logger.warn({ err: e }, 're-check of waited tasks failed');
    } finally {
      this.checking = false;
    }
  }

  onApplicationShutdown(): void {
    this.unsubscribe.forEach((off) => off());
    this.wakeAll();
    clearInterval(this.timer);
  }
}
