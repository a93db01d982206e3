import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { AppConfig } from '../../config/app-config.js';
import { NodesService } from '../nodes/nodes.service.js';
import { TaskRecoveryService } from '../tasks/task-recovery.service.js';

/**
 * One timer for all nodes: gives back the tasks of nodes offline past the reconnect grace
 * (by the retry policy), and chases assignments that acknowledging nodes did not acknowledge.
 * Whether a node is offline is decided by its connection and its hub process (HubInstances),
 * never by heartbeat silence on a live socket. Safe in several processes: the statements
 * are compare-and-set and claim their rows with SKIP LOCKED.
 */
@Injectable()
export class NodeLiveness implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NodeLiveness');
  private readonly periodic = new Periodic('liveness check', this.logger, () => this.check());

  constructor(
    private readonly nodes: NodesService,
    private readonly recovery: TaskRecoveryService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // At once too: after a crash, nodes that were gone longer than the grace give their tasks back now.
    this.periodic.start(this.config.NODE_LIVENESS_TICK_MS, true);
  }

  /** Returns what it did, for tests and logs. */
  async check(): Promise<{ released: number; resent: number; unacked: number }> {
    await this.nodes.flushHeartbeats();
    const released = await this.recovery.releaseLostNodeTasks(this.config.NODE_RECONNECT_GRACE_MS / 1000);
    const chased = await this.recovery.chaseUnacked(this.config.DISPATCH_ACK_TIMEOUT_MS / 1000);
    if (released.length) this.logger.warn(`${released.length} task(s) of lost nodes re-queued or failed`);
    if (chased.resent) this.logger.warn(`${chased.resent} unacknowledged assignment(s) sent again`);
    if (chased.released) this.logger.warn(`${chased.released} assignment(s) still unacknowledged given to other nodes`);
    return { released: released.length, resent: chased.resent, unacked: chased.released };
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
