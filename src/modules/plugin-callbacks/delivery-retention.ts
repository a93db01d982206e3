import { Injectable, type OnModuleInit } from '@nestjs/common';
import { parseDuration } from '../../common/duration.js';
import { AppConfig } from '../../config/app-config.js';
import { untilShort } from '../retention/retention-policy.js';
import { RetentionRegistry } from '../retention/retention-registry.js';
import { PluginDeliveriesRepository } from './plugin-deliveries.repository.js';

/** Forgets callback deliveries (webhook-ids) older than PLUGIN_DELIVERY_RETENTION (docs/retention.md). */
@Injectable()
export class DeliveryRetention implements OnModuleInit {
  constructor(
    private readonly config: AppConfig,
    private readonly deliveries: PluginDeliveriesRepository,
    private readonly registry: RetentionRegistry,
  ) {}

  onModuleInit(): void {
    this.registry.register({
      name: 'plugin_deliveries',
      batches: (limit) => {
        const seconds = parseDuration(this.config.PLUGIN_DELIVERY_RETENTION) ?? 86_400;
        return untilShort('plugin_deliveries', limit, async () => ({
          n: await this.deliveries.prune(seconds, limit),
        }));
      },
    });
  }
}
