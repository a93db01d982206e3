import { Injectable } from '@nestjs/common';
import { Histogram } from 'prom-client';

/**
 * The dispatcher's Prometheus series (registered into the hub's registry by MetricsService):
 * how long one dispatch round takes, from its first read to its last assignment's commit.
 */
@Injectable()
export class DispatchMetrics {
  readonly round = new Histogram({
    name: 'taskhub_dispatch_round_seconds',
    help: 'Duration of one dispatch round (read ready tasks and nodes with room, plan, commit the assignments)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [],
  });
}
