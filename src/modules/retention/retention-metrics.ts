import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';

/** The cleaner's Prometheus series (registered into the hub's registry by MetricsService). */
@Injectable()
export class RetentionMetrics {
  readonly deleted = new Counter({
    name: 'taskhub_retention_deleted_total',
    help: 'Rows removed by retention (docs/retention.md), by table; counted by the hub that removed them',
    labelNames: ['table'] as const,
    registers: [],
  });
  readonly errors = new Counter({
    name: 'taskhub_retention_errors_total',
    help: 'Retention policies that failed during a pass (retried at the next pass), by policy',
    labelNames: ['policy'] as const,
    registers: [],
  });
  readonly lastRun = new Gauge({
    name: 'taskhub_retention_last_run_timestamp_seconds',
    help: 'When this hub last finished a retention pass (0: never; one hub at a time runs them)',
    registers: [],
  });
  readonly lastRunDuration = new Gauge({
    name: 'taskhub_retention_last_run_duration_seconds',
    help: 'How long the last retention pass of this hub took',
    registers: [],
  });

  all(): (Counter | Gauge)[] {
    return [this.deleted as Counter, this.errors as Counter, this.lastRun, this.lastRunDuration];
  }
}
