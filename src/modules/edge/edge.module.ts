import { Global, Module } from '@nestjs/common';
import { ConnectionLedger } from './connection-ledger.js';
import { EdgeMetrics } from './edge-metrics.js';

/**
 * The edge (docs/edge.md): what every listener shares to stay up in front of any client —
 * connection counts per address and key, and the counters of refusals and drops. Global, so
 * the realtime channels, the agent proxy and the LLM gateway use the same ledger.
 */
@Global()
@Module({ providers: [ConnectionLedger, EdgeMetrics], exports: [ConnectionLedger, EdgeMetrics] })
export class EdgeModule {}
