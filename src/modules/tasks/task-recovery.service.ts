import { Injectable } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { TaskAnnouncer } from './task-announcer.js';
import { TaskBatchesRepository } from './task-batches.repository.js';
import type { TaskRow } from './task.types.js';

/**
 * Tasks whose holder is gone or silent go back by the retry policy: expired leases, nodes
 * offline past their grace, removed nodes, assignments never acknowledged.
 */
@Injectable()
export class TaskRecoveryService {
  constructor(
    private readonly batches: TaskBatchesRepository,
    private readonly events: EventBus,
    private readonly announce: TaskAnnouncer,
  ) {}

  async sweepExpiredLeases(limit = 500): Promise<TaskRow[]> {
    const rows = await this.batches.sweepExpiredLeases(limit);
    rows.forEach((r) => this.announce.attemptEnded(r));
    return rows;
  }

  /** Tasks of nodes that are gone (offline past the reconnect grace) go back by the retry policy. */
  async releaseLostNodeTasks(graceSeconds: number): Promise<TaskRow[]> {
    const rows = await this.batches.releaseLostNodeTasks(graceSeconds);
    rows.forEach((r) => this.announce.attemptEnded(r));
    return rows;
  }

  /** Every task a node holds goes back at once (the node was deleted). */
  async releaseNodeTasks(nodeId: string): Promise<TaskRow[]> {
    const rows = await this.batches.releaseNodeTasks(nodeId);
    rows.forEach((r) => this.announce.attemptEnded(r));
    return rows;
  }

  /**
   * Acknowledging nodes that did not acknowledge an assignment in time: it is sent once more;
   * still nothing after another timeout, and it goes back to the queue for another node.
   */
  async chaseUnacked(timeoutSeconds: number): Promise<{ resent: number; released: number }> {
    const resent = await this.batches.redeliverUnacked(timeoutSeconds, 500);
    for (const { vocabulary, ...task } of resent) this.events.publish('task.redelivered', { task, vocabulary });
    const released = await this.batches.releaseUnacked(timeoutSeconds);
    for (const row of released) {
      const nodeId = (row.error as { node_id?: string } | null)?.node_id;
      if (nodeId)
        this.events.publish('task.revoked', {
          taskId: row.id,
          attempt: row.attempt,
          nodeId,
          reason: 'not acknowledged in time',
        });
      this.announce.attemptEnded(row);
    }
    return { resent: resent.length, released: released.length };
  }
}
