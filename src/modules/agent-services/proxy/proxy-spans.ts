import type { IncomingMessage } from 'node:http';
import { endWithError, type Span, SpanKind, startSpan } from '../../../common/tracing/tracer.js';
import { parseTraceparent } from '../../../common/tracing/traceparent.js';
import type { ProxyConnection } from './connection-registry.js';

/**
 * One proxied session (seed 003's routing WebSocket proxy) as a server span: from the client's
 * upgrade to the link's end, continuing the upgrade's `traceparent`; each service it is routed to
 * (the first, and each fail-over) is an event, and the agent's upstream handshake carries the
 * span's context.
 */
export function sessionSpan(req: IncomingMessage, conn: ProxyConnection): Span | undefined {
  const sent = req.headers.traceparent;
  return startSpan('agent.proxy.session', {
    parent: parseTraceparent(sent) ? (sent as string) : undefined,
    kind: SpanKind.SERVER,
    attributes: {
      'taskhub.agent.connection_id': conn.connection_id,
      'taskhub.agent.session_id': conn.session_id,
      'client.address': conn.client_ip,
    },
  });
}

export function endSessionSpan(span: Span, conn: ProxyConnection, code: number, why: string): void {
  span.setAttributes({
    'taskhub.agent.service': conn.target_service ?? undefined,
    'taskhub.agent.routing_strategy': conn.routing_strategy ?? undefined,
    'taskhub.agent.switches': conn.switches,
    'taskhub.agent.messages_received': conn.messages_received,
    'taskhub.agent.messages_sent': conn.messages_sent,
    'taskhub.agent.bytes_received': conn.bytes_received,
    'taskhub.agent.bytes_sent': conn.bytes_sent,
    'taskhub.agent.close_code': code,
    'taskhub.agent.close_reason': why,
  });
  // A session that never reached a service, or ended by an error, is an error span.
  if (!conn.target_service_id || code === 1011) endWithError(span, why);
  else span.end();
}
