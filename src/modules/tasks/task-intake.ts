import { currentTenantSetting, runWithTenantSetting } from '../../database/tenant-context.js';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import type { TaskAssignmentsRepository } from './task-assignments.repository.js';
import type { TaskRow, NewTask } from './task.types.js';
import type { TasksRepository } from './tasks.repository.js';

/** A submission's row; `vocabulary` when it was assigned to a node at intake (the node's). */
export interface Intaken {
  row: TaskRow;
  created: boolean;
  vocabulary?: NodeVocabulary;
}

interface Pending {
  task: NewTask;
  /** May be assigned to a node in its insert (TaskIntakeService decides). */
  direct: boolean;
  /** The submitter's tenant context: its task goes into that tenant (see flush). */
  tenant: string;
  resolve: (r: Intaken) => void;
  reject: (e: unknown) => void;
}

const MAX_PER_STATEMENT = 1000;
/** Statistics are refreshed after this many inserts, and at most this often. */
const ANALYZE_AFTER_ROWS = 5000;
const ANALYZE_MIN_INTERVAL_MS = 10_000;

/**
 * Group commit for submissions: every task submitted in the same tick of the event loop
 * goes into one INSERT statement. Each caller still answers only after its row is
 * committed, so "durable before 201" holds, with one round trip for many requests.
 */
export class TaskIntake {
  private queue: Pending[] = [];
  private scheduled = false;
  private insertedSinceAnalyze = 0;
  private lastAnalyze = 0;
  private analyzing = false;

  constructor(
    private readonly repo: TasksRepository,
    private readonly assignments: TaskAssignmentsRepository,
  ) {}

  submit(task: NewTask, direct = false): Promise<Intaken> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, direct, tenant: currentTenantSetting(), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Inserts tasks (already validated, ids assigned) and resolves idempotency hits. */
  async insert(tasks: NewTask[]): Promise<{ row: TaskRow; created: boolean }[]> {
    const inserted = await this.repo.insertMany(tasks);
    this.noteInserted(inserted.length);
    const byId = new Map(inserted.map((r) => [r.id, r]));
    const missingKeys = tasks.filter((t) => !byId.has(t.id)).map((t) => t.idempotency_key as string);
    const existing = missingKeys.length ? await this.repo.findByIdempotencyKeys(missingKeys) : [];
    const byKey = new Map(existing.map((r) => [r.idempotency_key, r]));
    return tasks.map((t) => {
      const row = byId.get(t.id);
      if (row) return { row, created: true };
      const first = byKey.get(t.idempotency_key);
      if (!first) throw new Error(`task ${t.id} was neither inserted nor found by idempotency key`);
      return { row: first, created: false };
    });
  }

  /**
   * One submission alone in its tick, which may go straight to an idle node: one statement
   * inserts and assigns it (TaskAssignmentsRepository.insertAssigned), else it is inserted pending.
   */
  private async insertDirect(task: NewTask): Promise<Intaken> {
    const inserted = await this.assignments.insertAssigned(task);
    this.noteInserted(inserted ? 1 : 0);
    if (inserted) return { row: inserted.row, created: true, vocabulary: inserted.vocabulary ?? undefined };
    const [first] = await this.repo.findByIdempotencyKeys([task.idempotency_key as string]);
    if (!first) throw new Error(`task ${task.id} was neither inserted nor found by idempotency key`);
    return { row: first, created: false };
  }

  /**
   * A burst of submissions (a batch import) leaves the planner believing the queue is empty until
   * autovacuum gets round to it (a minute or more): it then plans the dispatcher's pick with a
   * bitmap scan and a sort of every pending task. Refreshing the statistics right after a burst
   * keeps the ordered index scan. Best effort, one at a time, in the background.
   */
  private noteInserted(rows: number): void {
    this.insertedSinceAnalyze += rows;
    if (
      this.analyzing ||
      this.insertedSinceAnalyze < ANALYZE_AFTER_ROWS ||
      Date.now() - this.lastAnalyze < ANALYZE_MIN_INTERVAL_MS
    )
      return;
    this.analyzing = true;
    this.insertedSinceAnalyze = 0;
    this.lastAnalyze = Date.now();
    this.repo
      .analyze()
      .catch(() => undefined) // statistics are an optimisation; autovacuum refreshes them anyway
      .finally(() => (this.analyzing = false));
  }

  /**
   * Runs in the context of whoever scheduled it: one statement per submitters' tenant context,
   * under that context, so each task lands in its caller's tenant (docs/tenants.md).
   */
  private flush(): void {
    this.scheduled = false;
    const byTenant = new Map<string, Pending[]>();
    for (const p of this.queue) {
      const group = byTenant.get(p.tenant);
      if (group) group.push(p);
      else byTenant.set(p.tenant, [p]);
    }
    this.queue = [];
    for (const [tenant, pending] of byTenant)
      for (let i = 0; i < pending.length; i += MAX_PER_STATEMENT) {
        const batch = pending.slice(i, i + MAX_PER_STATEMENT);
        // Alone in its tick (an idle hub's pickup): it may be assigned in its own insert. In a
        // burst, one statement for all of them is worth more; the dispatcher then places them.
        const write = (): Promise<Intaken[]> =>
          batch.length === 1 && batch[0].direct
            ? this.insertDirect(batch[0].task).then((r) => [r])
            : this.insert(batch.map((p) => p.task));
        runWithTenantSetting(tenant, write).then(
          (results) => results.forEach((r, j) => batch[j].resolve(r)),
          (error: unknown) => batch.forEach((p) => p.reject(error)),
        );
      }
  }
}
