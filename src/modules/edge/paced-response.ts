import type { Writable } from 'node:stream';

/**
 * A streamed HTTP answer (server-sent events) paced by its client (docs/edge.md, "Socket.IO and
 * streamed answers"). Each write says whether the producer may go on: when `res.write()`
 * returns false the client is behind, and the producer waits for 'drain' before it reads more
 * from its own source (backpressure reaches the upstream instead of piling up here). Whatever
 * is queued for the client past `limit()` bytes (OUTBOUND_LIMIT_BYTES) ends the answer: the
 * response is destroyed and `onDrop` runs, once.
 */
export class PacedResponse {
  private dropped = false;

  constructor(
    private readonly res: Writable,
    private readonly limit: () => number,
    private readonly onDrop: () => void,
  ) {}

  /** The client has not taken what was written yet (a write is waiting for 'drain'). */
  get stalled(): boolean {
    return !this.res.destroyed && this.res.writableNeedDrain;
  }

  /**
   * Writes `data`. Undefined: go on. A promise: wait for it before producing more (it settles
   * at 'drain', or when the response closes). Past the limit the answer is dropped (undefined;
   * later writes are ignored).
   */
  write(data: string): Promise<void> | undefined {
    if (this.dropped || this.res.destroyed || this.res.writableEnded) return undefined;
    const flowing = this.res.write(data);
    const limit = this.limit();
    if (limit > 0 && this.res.writableLength > limit) {
      this.drop();
      return undefined;
    }
    if (flowing) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /**
   * Ends the answer of a client that is not reading: destroyed (it would not take a last
   * frame either), `onDrop` once.
   */
  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.onDrop();
    this.res.destroy();
  }
}
