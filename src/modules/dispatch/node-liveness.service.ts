import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { AppConfig } from '../../config/app-config.js';
import { NodesService } from '../nodes/nodes.service.js';
import { TasksService } from '../tasks/tasks.service.js';

/**
 * One timer for all nodes: marks silent nodes offline and gives back the tasks of nodes
 * gone past the reconnect grace (by the retry policy). Safe in several processes: the
 * statements are compare-and-set and the task release uses SKIP LOCKED.
 */
@Injectable()
export class NodeLiveness implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NodeLiveness');
  private readonly periodic = new Periodic('liveness check', this.logger, () => this.check());

  constructor(
    private readonly nodes: NodesService,
    private readonly tasks: TasksService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.periodic.start(this.config.NODE_LIVENESS_TICK_MS);
  }

  get silenceSeconds(): number {
    return (this.config.NODE_HEARTBEAT_INTERVAL_MS * this.config.NODE_HEARTBEAT_MISSES) / 1000;
  }

  /** Returns what it did, for tests and logs. */
  async check(): Promise<{ silent: string[]; released: number }> {
    await this.nodes.flushHeartbeats();
    const silent = await this.nodes.markSilentOffline(this.silenceSeconds);
    const released = await this.tasks.releaseLostNodeTasks(this.config.NODE_RECONNECT_GRACE_MS / 1000, this.silenceSeconds);
    if (silent.length) this.logger.warn(`nodes silent past ${this.silenceSeconds}s: ${silent.join(', ')}`);
    if (released.length) this.logger.warn(`${released.length} task(s) of lost nodes re-queued or failed`);
    return { silent, released: released.length };
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
