/**
 * Most results may be in flight beside each other on one connection; past this, a result waits
 * for the others like any message (a flooding client gets no unbounded concurrency).
 */
const MAX_RESULTS_IN_FLIGHT = 64;

/**
 * The order one connection's messages are handled in. Each message waits for every message
 * before it, except a task's result, which waits only for the ordered messages before it and
 * for an earlier result of the same task. A node that answers several tasks at once then has
 * its results written by one group commit (TaskHoldersService) instead of one write after
 * another, each waiting for the last, with the acks of its next tasks held up behind them.
 * Any other message (a registration, progress, a log line) still waits for every result
 * before it, so nothing is reordered around a result.
 *
 * `T` is what each ordered handler hands to the next (the device channel passes on whether
 * the connection authenticated).
 */
export class MessageOrder<T> {
  private tail: Promise<T>;
  /**
   * Results in flight (settled versions: they never reject): the newest per task id, and all of
   * them. Made at the first result: a device that is idle (most of 10k) holds neither.
   */
  private lastResultOf?: Map<string, Promise<unknown>>;
  private results?: Set<Promise<unknown>>;

  constructor(start: Promise<T>) {
    this.tail = start;
  }

  /** Handles a message after every message before it; its answer becomes the next handler's gate. */
  ordered(handle: (gate: T) => Promise<T>): void {
    const tail = this.tail;
    this.tail = this.results?.size ? Promise.all(this.results).then(() => tail.then(handle)) : tail.then(handle);
  }

  /**
   * Handles a task's result once the ordered messages before it and the earlier results of
   * the same task are done, beside results of other tasks.
   */
  result(taskId: string | undefined, handle: (gate: T) => Promise<unknown>): void {
    if (taskId === undefined || (this.results?.size ?? 0) >= MAX_RESULTS_IN_FLIGHT) {
      this.ordered(async (gate) => {
        await handle(gate);
        return gate;
      });
      return;
    }
    const results = (this.results ??= new Set());
    const lastResultOf = (this.lastResultOf ??= new Map());
    const sameTask = lastResultOf.get(taskId) ?? Promise.resolve();
    const gate = this.tail;
    const run = sameTask.then(() => gate.then(handle));
    const tracked = settled(run);
    results.add(tracked);
    lastResultOf.set(taskId, tracked);
    void tracked.then(() => {
      results.delete(tracked);
      if (lastResultOf.get(taskId) === tracked) lastResultOf.delete(taskId);
      if (results.size === 0 && this.results === results) {
        this.results = undefined;
        this.lastResultOf = undefined;
      }
    });
  }

  /** Once every message received so far has been handled: the last ordered handler's answer. */
  drained(): Promise<T> {
    const tail = this.tail;
    return this.results?.size ? Promise.all(this.results).then(() => tail) : tail;
  }
}

/** Waits for a promise without inheriting its failure (handlers report their own errors). */
function settled(p: Promise<unknown>): Promise<void> {
  return p.then(noop, noop);
}

function noop(): void {}

/** The task a result names, when it names one as a string (validation comes later, in order). */
export function taskIdOf(payload: unknown): string | undefined {
  const id = (payload as { task_id?: unknown } | null | undefined)?.task_id;
  return typeof id === 'string' ? id : undefined;
}
