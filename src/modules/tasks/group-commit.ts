import type { TaskRow } from './task.types.js';

interface Waiting<I> {
  item: I;
  resolve: (row: TaskRow | undefined) => void;
  reject: (e: unknown) => void;
}

const MAX_PER_STATEMENT = 500;

export interface GroupCommitOptions<I> {
  /** Wait this long for more items before writing (default: until the end of this tick). */
  delayMs?: number;
  /** Items made moot while they waited: answered `undefined` without a write. */
  skip?: (item: I) => boolean;
}

/**
 * Group commit: items reported in the same tick of the event loop (results, acks) are written
 * by one statement, each still guarded by its own compare-and-set inside it. Every caller
 * learns whether its own item won (the row) or not (undefined) once the statement commits.
 */
export class GroupCommit<I extends { id: string }> {
  private queue: Waiting<I>[] = [];
  private scheduled = false;

  constructor(
    private readonly write: (items: I[]) => Promise<TaskRow[]>,
    private readonly options: GroupCommitOptions<I> = {},
  ) {}

  submit(item: I): Promise<TaskRow | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        if (this.options.delayMs) setTimeout(() => this.flush(), this.options.delayMs);
        else setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const skip = this.options.skip;
    if (skip) {
      const moot = this.queue.filter((w) => skip(w.item));
      if (moot.length) {
        this.queue = this.queue.filter((w) => !moot.includes(w));
        moot.forEach((w) => w.resolve(undefined));
      }
    }
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_PER_STATEMENT);
      this.write(batch.map((w) => w.item)).then(
        (rows) => {
          const byId = new Map(rows.map((r) => [r.id, r]));
          for (const w of batch) {
            const row = byId.get(w.item.id);
            byId.delete(w.item.id); // a duplicate id in the same batch won only once
            w.resolve(row);
          }
        },
        (e: unknown) => batch.forEach((w) => w.reject(e)),
      );
    }
  }
}
