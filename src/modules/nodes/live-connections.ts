import { Injectable } from '@nestjs/common';

/**
 * The device/node connections this hub process holds right now (Socket.IO socket ids, raw
 * WebSocket connection ids). A connection is added when it opens, before it can register,
 * and removed when it closes, so "registered here but not connected here" is always a
 * node whose disconnect was missed (e.g. its bookkeeping hit a database outage).
 */
@Injectable()
export class LiveConnections {
  private readonly ids = new Set<string>();

  opened(connectionId: string): void {
    this.ids.add(connectionId);
  }

  closed(connectionId: string): void {
    this.ids.delete(connectionId);
  }

  list(): string[] {
    return [...this.ids];
  }

  get size(): number {
    return this.ids.size;
  }
}
