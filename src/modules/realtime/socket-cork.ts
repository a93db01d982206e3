import type { Socket as NetSocket } from 'node:net';
import type { Socket } from 'socket.io';

/** What `corked` touches of engine.io's connection (its fields are not typed as public). */
interface EngineInternals {
  readyState: string;
  transport: { writable: boolean; socket?: { _socket?: NetSocket } };
  flush(): void;
}

/**
 * Runs `emits` (synchronous socket.emit / ack calls) so that what they send leaves in one write.
 * Engine.IO sends a packet as soon as its transport is writable and the next ones only after
 * that write's callback, so an event and its ack (`register_success` and the registration's
 * ack) cost two writes to the socket, each ~0.3-0.5 ms of hub time on loopback. Here the
 * transport looks busy while they are queued; then one flush hands them all to `ws`, and the
 * TCP socket is corked around it so the frames share one writev. The bytes on the wire, their
 * order and the frames are unchanged.
 */
export function corked(socket: Socket, emits: () => void): void {
  const conn = socket.conn as unknown as EngineInternals;
  const transport = conn.transport;
  if (!transport?.writable || conn.readyState !== 'open') return emits();
  transport.writable = false;
  try {
    emits();
  } finally {
    if (conn.transport === transport && !transport.writable) transport.writable = true;
    const tcp = transport.socket?._socket;
    tcp?.cork();
    try {
      conn.flush();
    } finally {
      tcp?.uncork();
    }
  }
}
