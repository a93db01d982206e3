import { Global, Module } from '@nestjs/common';
import { ConnectionLedger } from './connection-ledger.js';
import { EdgeMetrics } from './edge-metrics.js';
import { SocketIoGuard } from './socket-io-guard.js';

/**
 * The edge (docs/edge.md): what every listener shares to stay up in front of any client —
 * connection counts per address and key, the counters of refusals and drops, and the guard of
 * the Socket.IO server. Global, so the realtime channels, the agent proxy and the LLM gateway
 * use the same ledger.
 */
@Global()
@Module({
  providers: [ConnectionLedger, EdgeMetrics, SocketIoGuard],
  exports: [ConnectionLedger, EdgeMetrics, SocketIoGuard],
})
export class EdgeModule {}
