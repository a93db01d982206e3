import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { Periodic } from '../../common/periodic.js';
import { INSTANCE_ID } from '../nodes/nodes.service.js';
import type { ServiceRow } from './agent-service.types.js';
import { AgentServicesRepository } from './agent-services.repository.js';
import { ServiceLifecycle } from './service-lifecycle.service.js';

/**
 * Periodic health checks: each running service with `health_check_enabled` is probed every
 * `health_check.interval` seconds by the hub that runs it (external services: by every hub).
 * Results go to the history; a change of health moves the service in or out of routing.
 */
@Injectable()
export class HealthMonitor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('HealthMonitor');
  private readonly nextDue = new Map<string, number>();
  private readonly ticker: Periodic;

  constructor(
    private readonly repo: AgentServicesRepository,
    private readonly lifecycle: ServiceLifecycle,
    private readonly config: AppConfig,
  ) {
    this.ticker = new Periodic('health checks', this.logger, () => this.tick());
  }

  onApplicationBootstrap(): void {
    this.ticker.start(this.config.SERVICE_HEALTH_TICK_MS);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ticker.stop();
  }

  private isMine(s: ServiceRow): boolean {
    return s.kind === 'external' || s.owner_instance === INSTANCE_ID;
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const services = (await this.repo.all()).filter(
      (s) => s.status === 'running' && s.config.health_check_enabled && this.isMine(s),
    );
    const due = services.filter((s) => {
      const at = this.nextDue.get(s.id);
      if (at === undefined) {
        // First sight: the start just checked it, so the first periodic check is one interval away.
        this.nextDue.set(s.id, now + s.health_check.interval * 1000);
        return false;
      }
      return at <= now;
    });
    const live = new Set(services.map((s) => s.id));
    for (const id of this.nextDue.keys()) if (!live.has(id)) this.nextDue.delete(id);
    await Promise.all(
      due.map(async (s) => {
        this.nextDue.set(s.id, now + s.health_check.interval * 1000);
        await this.lifecycle.check(s);
      }),
    );
  }
}
