import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { TaskAnnouncer } from './task-announcer.js';
import { isTerminal } from './task-state.js';
import { TaskTransitionsRepository } from './task-transitions.repository.js';
import type { TaskRow } from './task.types.js';
import { TasksRepository } from './tasks.repository.js';

/** What a client does to a task it submitted: cancel it, retry it, reply to it. */
@Injectable()
export class TaskActionsService {
  constructor(
    private readonly repo: TasksRepository,
    private readonly transitions: TaskTransitionsRepository,
    private readonly events: EventBus,
    private readonly announce: TaskAnnouncer,
  ) {}

  async cancel(id: string, reason?: string): Promise<TaskRow> {
    const row = await this.transitions.cancel(id, reason);
    if (row) {
      this.events.publish('task.cancelled', { task: row, nodeId: row.node_id });
      return this.announce.releaseNode(row);
    }
    const current = await this.get(id);
    throw new AppError(ErrorCode.CONFLICT, `Task is already ${current.status}`, { state: current.status });
  }

  async retry(id: string, force = false): Promise<TaskRow> {
    const row = await this.transitions.retry(id, force);
    if (row) return this.announce.releaseNode(row);
    const current = await this.get(id);
    if (current.awaits_callback) throw awaitedPluginConflict(current);
    if (isTerminal(current.status)) {
      throw new AppError(
        ErrorCode.RETRY_LIMIT_EXCEEDED,
        `Task has used ${current.retry_count} of ${current.max_retries} retries; pass force to retry anyway`,
        { retry_count: current.retry_count, max_retries: current.max_retries },
      );
    }
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status}; only finished tasks can be retried`, {
      state: current.status,
    });
  }

  /**
   * `message` undefined: continue the task without one (seed 000's `POST /tasks/:id/reply` with no
   * body, "继续执行任务"): a finished task goes back to the queue, an active one is left running.
   */
  async reply(id: string, message?: string): Promise<TaskRow> {
    const entry = message === undefined ? [] : [{ role: 'user', content: message, at: new Date().toISOString() }];
    const length = message?.length ?? 0;
    // Finished: the conversation continues, so the task goes back to the queue. Active: the holder gets it with the task.
    const requeued = await this.transitions.replyAndRequeue(id, entry, length);
    if (requeued) return this.announce.releaseNode(requeued);
    if (message !== undefined) {
      const appended = await this.transitions.appendReply(id, entry, length);
      if (appended) return appended;
    }
    const current = await this.get(id);
    if (current.awaits_callback) throw awaitedPluginConflict(current);
    // Nothing to add to a task still queued or running: it is already going on.
    if (message === undefined && !isTerminal(current.status)) return current;
    throw new AppError(ErrorCode.CONFLICT, `Task is ${current.status}; try again`, { state: current.status });
  }

  private async get(id: string): Promise<TaskRow> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Task', id);
    return row;
  }
}

/** A finished task created to await a plugin is not re-queued (it would go to a node). */
function awaitedPluginConflict(row: TaskRow): AppError {
  return new AppError(
    ErrorCode.CONFLICT,
    `Task awaited plugin ${row.awaits_callback ?? '?'} and is ${row.status}; submit a new task instead`,
    {
      state: row.status,
    },
  );
}
