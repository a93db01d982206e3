import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PgListener } from '../../database/pg-listener.js';
import { EventBus } from '../../common/events/event-bus.js';
import { runAsSystem } from '../../database/tenant-context.js';
import type { TaskRow } from './task.types.js';
import { TasksRepository } from './tasks.repository.js';

/** How often the tasks waited on here are looked up, for those finished by another hub process. */
const RECHECK_MS = 1000;
/** Where a hub says that a chat's tool task finished: the hub running the chat may be another. */
const FINISHED_CHANNEL = 'taskhub_task_finished';

type Wake = (row: TaskRow | undefined) => void;

/**
 * Requests waiting for tasks to finish (`GET /api/v1/tasks/:id?wait_seconds=N`). Woken by this
 * process's task events at once; and, while anyone waits, every RECHECK_MS by one query over all
 * waited ids (a task may finish on another hub). No timer runs when nobody waits.
 */
@Injectable()
export class TaskWaiters implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('TaskWaiters');
  private readonly waiting = new Map<string, Set<Wake>>();
  private timer?: NodeJS.Timeout;
  private checking = false;
  private readonly unsubscribe: (() => void)[] = [];

  private readonly listener: PgListener;

  constructor(
    private readonly events: EventBus,
    private readonly repo: TasksRepository,
    db: DataSource,
  ) {
    this.listener = new PgListener(db, FINISHED_CHANNEL, this.logger, (id) => this.finishedElsewhere(id));
  }

  onModuleInit(): void {
    this.unsubscribe.push(
      this.events.on('task.completed', ({ task }) => this.finished(task)),
      this.events.on('task.failed', ({ task, retrying }) => {
        if (!retrying) this.finished(task);
      }),
      this.events.on('task.cancelled', ({ task }) => this.finished(task)),
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

  onApplicationBootstrap(): Promise<void> {
    return this.listener.start();
  }

  /**
   * A task finished in this process: its waiters here answer, and, for a chat's tool task
   * (someone waits on it, maybe on another hub), the other hubs are told at once instead of
   * finding it at their next re-check. Other tasks are not announced: no NOTIFY per task.
   */
  private finished(row: TaskRow): void {
    this.wake(row);
    if (this.waiting.has(row.id) || typeof row.metadata?.chat_request_id !== 'string') return;
    this.listener
      .notify(row.id)
      .catch((e: unknown) => this.logger.warn({ err: e, task_id: row.id }, 'could not announce a finished tool task'));
  }

  /** Another hub finished a task: look it up now if anyone here waits on it. */
  private finishedElsewhere(id: string): void {
    if (!this.waiting.has(id)) return;
    void runAsSystem(() => this.repo.findFinished([id]))
      .then((rows) => rows.forEach((row) => this.wake(row)))
      .catch((e: unknown) => this.logger.warn({ err: e, task_id: id }, 'look-up of a task finished elsewhere failed'));
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

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe.forEach((off) => off());
    this.wakeAll();
    clearInterval(this.timer);
    await this.listener.stop();
  }
}
