import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** All SQL over `plugin_deliveries`: the webhook-ids seen per plugin, kept PLUGIN_DELIVERY_RETENTION. */
@Injectable()
export class PluginDeliveriesRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Records a delivery inside the caller's transaction. False when this plugin's webhook-id is
   * already recorded: a concurrent first delivery makes this wait on its row, then answers false.
   */
  async record(tx: EntityManager, plugin: string, webhookId: string, taskId: string): Promise<boolean> {
    const rows: unknown[] = await tx.query(
      `INSERT INTO plugin_deliveries (plugin, webhook_id, task_id) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, plugin, webhook_id) DO NOTHING RETURNING 1`,
      [plugin, webhookId, taskId],
    );
    return rows.length === 1;
  }

  /** Forgets up to `limit` deliveries older than `seconds`, oldest first; how many. */
  async prune(seconds: number, limit: number): Promise<number> {
    const rows: { n: number }[] = await this.db.query(
      `WITH d AS (
         DELETE FROM plugin_deliveries WHERE (tenant_id, plugin, webhook_id) IN (
           SELECT tenant_id, plugin, webhook_id FROM plugin_deliveries
           WHERE received_at < now() - make_interval(secs => $1) ORDER BY received_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [seconds, limit],
    );
    return rows[0].n;
  }
}
