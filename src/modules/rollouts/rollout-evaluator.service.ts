import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { runAsSystem, runAsTenant } from '../../database/tenant-context.js';
import { TaskActionsService } from '../tasks/task-actions.service.js';
import type { TaskRow } from '../tasks/task.types.js';
import { RolloutReleaser } from './rollout-releaser.service.js';
import { allFinished, releasesPerMinute, trippedRule } from './rollout-policy.js';
import type { RolloutCounts, RolloutRow } from './rollout.types.js';
import { type EvaluationOutcome, type RolloutChange, RolloutsRepository } from './rollouts.repository.js';

/** A rollout's task, from its metadata (tasks of no rollout: undefined). */
function rolloutOf(task: TaskRow): string | undefined {
  const id = (task.metadata as { rollout_id?: unknown } | null)?.rollout_id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Keeps in-progress rollouts' counts and decides their fate as their tasks end (docs/rollouts.md):
 * an abort rule that trips aborts the rollout, a rollout whose every node finished completes,
 * successes speed up an exponential rate. Runs on the hub that saw the task end (task.completed,
 * task.failed for good, task.cancelled), at once; evaluations of one rollout run one at a time
 * on a hub (a burst of results is one more evaluation, not one each), and across hubs the
 * rollout row's lock orders them.
 */
@Injectable()
export class RolloutEvaluator implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RolloutEvaluator');
  private readonly inFlight = new Map<string, { again: boolean; done: Promise<void> }>();
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly repo: RolloutsRepository,
    private readonly releaser: RolloutReleaser,
    private readonly actions: TaskActionsService,
    private readonly events: EventBus,
  ) {}

  onApplicationBootstrap(): void {
    const ended = ({ task }: { task: TaskRow }): void => {
      const id = rolloutOf(task);
      if (id) this.evaluate(id);
    };
    this.unsubscribe = [
      this.events.on('task.completed', ended),
      this.events.on('task.failed', (e) => !e.retrying && ended(e)),
      this.events.on('task.cancelled', ended),
    ];
    this.releaser.afterRejections = (ids) => ids.forEach((id) => this.evaluate(id));
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe.forEach((u) => u());
    await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }

  /** Evaluates now, or once more after the evaluation of this rollout in progress. */
  evaluate(id: string): void {
    const current = this.inFlight.get(id);
    if (current) {
      current.again = true;
      return;
    }
    const entry = { again: false, done: Promise.resolve() };
    this.inFlight.set(id, entry);
    entry.done = runAsSystem(async () => {
      try {
        do {
          entry.again = false;
          const outcome = await this.repo.evaluate(id, (row, counts) => this.decide(row, counts));
          if (outcome) await this.settle(outcome);
        } while (entry.again);
      } catch (e) {
        this.logger.error({ err: e }, `rollout ${id} evaluation failed`);
      } finally {
        this.inFlight.delete(id);
      }
    });
  }

  private decide(row: RolloutRow, counts: RolloutCounts): RolloutChange {
    const tripped = trippedRule(row.abort, counts);
    if (tripped) {
      const { rule, percent } = tripped;
      return {
        status: 'aborted',
        reason: `abort rule ${rule.failure_type} ≥ ${rule.threshold_percent}% (min ${rule.min_executed}) tripped: ${percent.toFixed(1)}% of ${counts.completed + counts.failed + counts.timed_out + counts.rejected} finished executions`,
      };
    }
    if (!row.include_future_nodes && row.queued === 0 && allFinished(counts)) return { status: 'completed' };
    // More successes may raise an exponential rate: the next release comes no later than the new interval.
    const before = releasesPerMinute(row.rate, row.counts.completed ?? 0);
    const now = releasesPerMinute(row.rate, counts.completed);
    if (now > before) {
      const next = Math.min(new Date(row.next_release_at).getTime(), Date.now() + 60_000 / now);
      return { next_release_at: new Date(next) };
    }
    return {};
  }

  /**
   * After the commit: an ended rollout's open tasks are cancelled through the tasks' own cancel
   * (a running one's node gets `cancel_task`) and an abort raises an alert; a faster rate wakes the releaser.
   */
  async settle(outcome: EvaluationOutcome): Promise<void> {
    const { row, ended } = outcome;
    if (!ended) {
      if (row.queued > 0) this.releaser.wake();
      return;
    }
    const reason = `rollout ${row.status}${row.reason ? `: ${row.reason}` : ''}`;
    await runAsTenant(row.tenant_id, () =>
      Promise.all(
        ended.open.map((taskId) =>
          this.actions.cancel(taskId, reason).catch((e: unknown) => {
            // Finished meanwhile: nothing to cancel.
            if (!(e instanceof AppError)) throw e;
          }),
        ),
      ),
    );
    if (ended.status === 'aborted')
      this.events.publish('hub.alert', {
        severity: 'critical',
        source: 'rollout',
        rollout_id: row.id,
        rollout_name: row.name,
        tenant_id: row.tenant_id,
        cancelled_tasks: ended.open.length,
        never_released: row.queued,
        message: `Rollout ${row.name} (${row.id}) aborted: ${row.reason ?? ''}`,
      });
  }
}
