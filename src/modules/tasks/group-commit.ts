import type { TaskRow } from './task.types.js';

interface Waiting<I> {
  item: I;
  resolve: (row: TaskRow | undefined) => void;
  reject: (e: unknown) => void;
}

const MAX_PER_STATEMENT = 500;

/**
 * Group commit: items reported in the same tick of the event loop (results, acks) are written
 * by one statement, each still guarded by its own compare-and-set inside it. Every caller
 * learns whether its own item won (the row) or not (undefined) once the statement commits.
 */
export class GroupCommit<I extends { id: string }> {
  private queue: Waiting<I>[] = [];
  private scheduled = false;

  constructor(private readonly write: (items: I[]) => Promise<TaskRow[]>) {}

  submit(item: I): Promise<TaskRow | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
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
