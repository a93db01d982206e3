import { currentTenantSetting, runWithTenantSetting } from '../../database/tenant-context.js';
import type { TaskRow } from './task.types.js';

interface Waiting<I> {
  item: I;
  /** The submitter's tenant context (tenant-context.ts): each statement runs under one. */
  tenant: string;
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
 * Tenants (docs/tenants.md): the flush runs in whatever context scheduled it, so items are
 * written per submitter's tenant context, each statement under it: row-level security guards a
 * batch as it guards a single write (one tenant's traffic, or the system's, is still one statement).
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
      this.queue.push({ item, tenant: currentTenantSetting(), resolve, reject });
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
    const byTenant = new Map<string, Waiting<I>[]>();
    for (const w of this.queue) {
      const group = byTenant.get(w.tenant);
      if (group) group.push(w);
      else byTenant.set(w.tenant, [w]);
    }
    this.queue = [];
    for (const [tenant, waiting] of byTenant)
      for (let i = 0; i < waiting.length; i += MAX_PER_STATEMENT)
        this.writeBatch(tenant, waiting.slice(i, i + MAX_PER_STATEMENT));
  }

  private writeBatch(tenant: string, batch: Waiting<I>[]): void {
    runWithTenantSetting(tenant, () => this.write(batch.map((w) => w.item))).then(
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
