import { hostname } from 'node:os';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { Periodic } from '../../common/periodic.js';
import { AppConfig } from '../../config/app-config.js';
import { type InstanceRecord, HubInstancesRepository } from './hub-instances.repository.js';
import { LiveConnections } from './live-connections.js';
import { INSTANCE_ID } from './nodes.service.js';

/**
 * This hub process in `hub_instances`, and the liveness of nodes that follows from it: a
 * socket connected to a live process is alive (the transport's ping-pong closes dead ones),
 * so a node is offline exactly when its connection closed or its process is gone. Every few
 * seconds: refresh our row, set offline our nodes whose connection is no longer here, and
 * sweep the nodes of processes that stopped refreshing (any hub may, SKIP LOCKED).
 */
@Injectable()
export class HubInstances implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('HubInstances');
  private readonly periodic = new Periodic('hub instance heartbeat', this.logger, () => this.tick());
  readonly self: InstanceRecord;

  constructor(
    private readonly repo: HubInstancesRepository,
    private readonly connections: LiveConnections,
    private readonly events: EventBus,
    private readonly config: AppConfig,
  ) {
    const host = hostname();
    // A fixed port names the same hub across restarts; port 0 (tests) is a new hub each time.
    const name =
      config.HUB_INSTANCE_NAME ?? (config.PORT ? `${host}:${config.PORT}` : `${host}:${process.pid}:${INSTANCE_ID}`);
    this.self = { id: INSTANCE_ID, name, host, pid: process.pid };
  }

  /**
   * Boot reconciles at once: earlier incarnations of this hub (or, without Redis, every other
   * hub: none can hold a socket) are gone, so their nodes go offline now and their grace starts.
   */
  async onApplicationBootstrap(): Promise<void> {
    const removed = await this.repo.register(this.self, !this.config.REDIS_URL);
    if (removed.length) this.logger.warn(`${removed.length} earlier hub process(es) found gone at boot`);
    await this.tick();
    this.periodic.start(this.config.HUB_INSTANCE_HEARTBEAT_MS);
  }

  /** One heartbeat: refresh, reconcile our own nodes, sweep vanished hubs. Answers the nodes set offline. */
  async tick(): Promise<string[]> {
    // The database's clock first, then the list: see reconcileOwn.
    const { existed, at } = await this.repo.refresh(this.self);
    const live = this.connections.list();
    if (!existed) {
      // We were silent long enough for another hub to sweep us (a stall, a long outage).
      const restored = await this.repo.restoreOwn(this.self.id, live);
      this.logger.warn(
        `this hub was presumed gone; ${restored.length} of its node(s) still connected marked online again`,
      );
      restored.forEach((nodeId) => this.events.publish('node.online', { nodeId }));
    }
    const mine = await this.repo.reconcileOwn(this.self.id, live, at);
    const theirs = await this.repo.sweep(this.self.id, this.config.HUB_INSTANCE_STALE_MS);
    for (const nodeId of mine) this.events.publish('node.offline', { nodeId, reason: 'disconnected' });
    for (const nodeId of theirs) this.events.publish('node.offline', { nodeId, reason: 'its hub process is gone' });
    if (theirs.length)
      this.logger.warn(`${theirs.length} node(s) of vanished hub processes are offline; their reconnect grace runs`);
    return [...mine, ...theirs];
  }

  /** A clean stop: our nodes' grace starts now (they reconnect to us or another hub) and our row goes. */
  async onApplicationShutdown(): Promise<void> {
    await this.periodic.stop();
    await this.repo
      .release(this.self.id)
      .catch((e: unknown) => this.logger.warn({ err: e }, 'could not release this hub instance'));
  }
}
