import { Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';

/** Where a connection came in: the raw WebSocket channels, Socket.IO, plain HTTP. */
export type EdgeChannel = 'ws' | 'proxy' | 'node' | 'log' | 'upgrade' | 'socket.io' | 'events' | 'http' | 'llm';

/** Why the edge refused a handshake or dropped an open connection (bounded label values). */
export type EdgeReason =
  | 'address_limit'
  | 'key_limit'
  | 'channel_limit'
  | 'pending_handshakes'
  | 'handshake_timeout'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'invalid'
  | 'unavailable'
  | 'frame_too_large'
  | 'slow_consumer'
  | 'headers_timeout'
  | 'request_timeout'
  | 'bad_request';

/**
 * The edge's Prometheus counters (registered into the hub's registry by MetricsService): every
 * refusal and every drop is counted by channel and reason, and every socket error (resets,
 * broken pipes) by the stage it happened at.
 */
@Injectable()
export class EdgeMetrics {
  readonly refused = new Counter({
    name: 'taskhub_edge_refused_total',
    help: 'Connections or requests refused at the edge (handshake refusals, HTTP timeouts), by channel and reason',
    labelNames: ['channel', 'reason'] as const,
    registers: [],
  });
  readonly dropped = new Counter({
    name: 'taskhub_edge_dropped_total',
    help: 'Open connections closed by the hub for a limit (slow consumer, oversize frame), by channel and reason',
    labelNames: ['channel', 'reason'] as const,
    registers: [],
  });
  readonly socketErrors = new Counter({
    name: 'taskhub_edge_socket_errors_total',
    help: 'Socket errors (resets, broken pipes) on connections the hub has not handed to a channel yet, by stage',
    labelNames: ['stage'] as const,
    registers: [],
  });

  refuse(channel: EdgeChannel, reason: EdgeReason): void {
    this.refused.inc({ channel, reason });
  }

  drop(channel: EdgeChannel, reason: EdgeReason): void {
    this.dropped.inc({ channel, reason });
  }

  all(): Counter[] {
    return [this.refused, this.dropped, this.socketErrors] as Counter[];
  }
}
