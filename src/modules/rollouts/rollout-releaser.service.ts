import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { isDatabaseUnavailable } from '../../database/database-status.js';
import { runAsSystem, runAsTenant } from '../../database/tenant-context.js';
import { nodeTask } from './rollout-task.js';
import { TaskIntakeService } from '../tasks/task-intake.service.js';
import { releasesPerMinute, tokens } from './rollout-policy.js';
import type { ReleaseOutcome, RolloutRow } from './rollout.types.js';
import { RolloutsRepository } from './rollouts.repository.js';

/** Rollouts claimed per transaction, and nodes released per rollout per round (a second at the top rate). */
const CLAIM = 20;
const PER_ROLLOUT = 100;
/** The longest this hub sleeps: it wakes to release what another hub queued (or left when it died). */
export const RELEASE_SAFETY_MS = 5000;
/** How soon to look again at a due rollout another hub is releasing. */
const BUSY_RETRY_MS = 20;

/**
 * Releases rollouts' queued nodes at their rates (docs/rollouts.md). Every hub runs one; a timer
 * sleeps until the earliest due release of any rollout (one indexed query, not one per
 * rollout), and a round claims due rollouts FOR UPDATE SKIP LOCKED, so each release happens on
 * one hub. A released node gets a normal task through the tasks intake (`target_node_id` = the
 * node, `metadata.rollout_id`), so events, traces and metrics are the usual ones.
 */
@Injectable()
export class RolloutReleaser implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RolloutReleaser');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private unsubscribe?: () => void;
  /** Told which rollouts had tasks refused in a round (the evaluator counts them). */
  afterRejections: (rolloutIds: string[]) => void = () => undefined;

  constructor(
    private readonly repo: RolloutsRepository,
    private readonly intake: TaskIntakeService,
    private readonly events: EventBus,
  ) {}

  onApplicationBootstrap(): void {
    // A node that comes online may be a future node of a rollout that takes them.
    this.unsubscribe = this.events.on('node.online', ({ nodeId }) => void this.nodeOnline(nodeId));
    this.wake();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.running;
  }

  /** Runs a round now (or right after the one in progress), then sleeps until the next due release. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = runAsSystem(() => this.round()).finally(() => (this.running = undefined));
  }

  private async round(): Promise<void> {
    let next: Date | null = null;
    let claimed = 0;
    try {
      do {
        this.again = false;
        let n: number;
        do {
          n = await this.repo.claimDue(CLAIM, PER_ROLLOUT, (rows) => this.release(rows));
          claimed += n;
        } while (n === CLAIM);
      } while (this.again && !this.stopped);
      next = await this.repo.nextDue();
      // Due but nothing claimed: another hub holds it and is releasing. Look again shortly, not in a loop.
      if (claimed === 0 && next !== null && new Date(next).getTime() <= Date.now())
        next = new Date(Date.now() + BUSY_RETRY_MS);
    } catch (e) {
      if (isDatabaseUnavailable(e)) this.logger.debug('rollout releases wait for the database');
      else this.logger.error({ err: e }, 'rollout release round failed');
    }
    if (this.stopped) return;
    const delay = next === null ? RELEASE_SAFETY_MS : Math.max(0, new Date(next).getTime() - Date.now());
    this.timer = setTimeout(() => this.wake(), Math.min(delay, RELEASE_SAFETY_MS));
    this.timer.unref();
  }

  private async release(claimed: { row: RolloutRow; queued: string[] }[]): Promise<ReleaseOutcome[]> {
    const now = new Date();
    const rejected: string[] = [];
    const outcomes = await Promise.all(
      claimed.map(async ({ row, queued }) => {
        const rate = releasesPerMinute(row.rate, row.counts.completed ?? 0);
        const { count, next } = tokens(rate, new Date(row.next_release_at), now, queued.length);
        const released = await Promise.all(queued.slice(0, count).map((node) => this.submit(row, node)));
        if (released.some((r) => r.error)) rejected.push(row.id);
        return { id: row.id, next_release_at: next, released };
      }),
    );
    if (rejected.length) setImmediate(() => this.afterRejections(rejected));
    return outcomes;
  }

  /** One node's task, in the rollout's tenant; a refusal (a tenant limit) is recorded on the node. */
  private async submit(
    row: RolloutRow,
    nodeId: string,
  ): Promise<{ node_id: string; task_id: string | null; error: string | null }> {
    try {
      const dto = nodeTask(row.task, row.id, row.name, nodeId);
      const { row: task } = await runAsTenant(row.tenant_id, () => this.intake.submit(dto));
      return { node_id: nodeId, task_id: task.id, error: null };
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      this.logger.warn(`rollout ${row.id}: the task for node ${nodeId} was refused: ${e.code}: ${e.message}`);
      const field = e.details?.field === undefined ? '' : ` (${String(e.details.field)})`;
      return { node_id: nodeId, task_id: null, error: `${e.code}: ${e.message}${field}` };
    }
  }

  private async nodeOnline(nodeId: string): Promise<void> {
    try {
      const joined = await runAsSystem(() => this.repo.enqueueNode(nodeId));
      if (joined.length) this.wake();
    } catch (e) {
      this.logger.error({ err: e }, `could not queue node ${nodeId} for rollouts`);
    }
  }
}
