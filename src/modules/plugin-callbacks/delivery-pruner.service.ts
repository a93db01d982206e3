import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Periodic } from '../../common/periodic.js';
import { PluginDeliveriesRepository } from './plugin-deliveries.repository.js';

const KEEP_HOURS = 24;
const EVERY_MS = 10 * 60_000;

/** Forgets callback deliveries (webhook-ids) older than a day; any hub may do it. */
@Injectable()
export class DeliveryPruner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DeliveryPruner');
  private readonly periodic = new Periodic('plugin delivery prune', this.logger, () =>
    this.deliveries.prune(KEEP_HOURS),
  );

  constructor(private readonly deliveries: PluginDeliveriesRepository) {}

  onApplicationBootstrap(): void {
    this.periodic.start(EVERY_MS, true);
  }

  onApplicationShutdown(): Promise<void> {
    return this.periodic.stop();
  }
}
