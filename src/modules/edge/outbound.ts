import type { WebSocket } from 'ws';

/** Close code and reason of a connection dropped because its peer stopped reading. */
export const SLOW_CONSUMER_CLOSE = 1008;
export const SLOW_CONSUMER_REASON = 'SLOW_CONSUMER';
/** A dropped peer gets this long to take the close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * Sends a frame unless the peer has stopped reading: when more than `limit` bytes already wait
 * in this connection's outbound buffer (ws's queue plus the socket's), the frame is not queued,
 * the connection is closed 1008 SLOW_CONSUMER and destroyed after a short grace (a peer that
 * never reads never takes the close frame either), and `onDrop` runs once. Returns whether the
 * frame was queued. Memory per connection stays under about `limit` plus one frame.
 */
export function sendBounded(ws: WebSocket, data: string | Buffer, limit: number, onDrop: () => void): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  if (limit > 0 && ws.bufferedAmount > limit) {
    dropSlowConsumer(ws, onDrop);
    return false;
  }
  ws.send(data);
  return true;
}

const dropped = new WeakSet<WebSocket>();

/** Closes a connection whose peer stopped reading (once), then destroys it after the grace. */
export function dropSlowConsumer(ws: WebSocket, onDrop: () => void): void {
  if (dropped.has(ws)) return;
  dropped.add(ws);
  onDrop();
  ws.close(SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON);
  setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
}

/** ws's error for an inbound message over its `maxPayload` (it closes the connection 1009 itself). */
export const isOversizeFrame = (e: Error): boolean =>
  (e as NodeJS.ErrnoException).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
