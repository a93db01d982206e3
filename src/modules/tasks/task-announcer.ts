import { Injectable } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import type { TaskRow } from './task.types.js';

/** What a transition means to the rest of the hub, published once it is committed. */
@Injectable()
export class TaskAnnouncer {
  constructor(private readonly events: EventBus) {}

  /** Tell the dispatcher (and anyone else) that tasks may be claimable now or at a new run_at. */
  ready(count: number, runAt?: Date): void {
    if (count > 0) this.events.publish('tasks.ready', { count, runAt });
  }

  /**
   * An attempt ended (completed, failed, timed out, re-queued, or re-armed for a plugin):
   * publishes what that means, then frees its node's slot.
   */
  attemptEnded(row: TaskRow): TaskRow {
    if (row.status === 'completed') this.events.publish('task.completed', { task: row });
    else if (row.status === 'failed' || row.status === 'timed_out')
      this.events.publish('task.failed', { task: row, retrying: false });
    else if (row.status === 'pending' && row.error) this.events.publish('task.failed', { task: row, retrying: true });
    // A task awaiting a plugin is not queued on retry: it waits again (running, error kept).
    else if (row.status === 'running' && row.awaits_callback && row.error)
      this.events.publish('task.failed', { task: row, retrying: true });
    return this.releaseNode(row);
  }

  /** A finished or re-queued task frees a slot on the node that held it. */
  releaseNode(row: TaskRow): TaskRow {
    if (row.node_id && row.status !== 'running' && row.status !== 'dispatched') {
      this.events.publish('node.capacity', { nodeId: row.node_id });
    }
    if (row.status === 'pending') this.ready(1, row.run_at);
    return row;
  }
}
