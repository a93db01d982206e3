import { FairShare } from '../concurrency/fair-share.js';

/** Where the slots come from (the router's deployments): the queue only decides who gets them. */
export interface SlotSource<S> {
  /** Takes a free slot of a served model for the caller (a call now counts in flight on it), or undefined when none is free. */
  acquire(model: string): S | undefined;
  /** Whether waiting can still help the chain: one of its deployments is not cooling down. */
  waitable(chain: readonly string[]): boolean;
}

/** How a wait ended without a slot: the bound refused it, it timed out, its request stopped, or waiting cannot help any more. */
export type SlotRefusal = 'off' | 'full' | 'timeout' | 'aborted' | 'unavailable';

export type SlotWait<S> = { slot: S; model: string } | { refused: SlotRefusal };

interface Waiter<S> {
  readonly tenant: string;
  readonly weight: number;
  readonly chain: readonly string[];
  readonly resolve: (outcome: SlotWait<S>) => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
  timer?: NodeJS.Timeout;
}

/**
 * Requests waiting for a slot of a deployment at max_concurrency, handed the slots as they free
 * up, fairly between tenants (docs/llm.md, "Waiting for a slot, fairly between tenants"). A freed
 * slot of a model goes to the waiters whose chain (the model and its fallbacks) holds that model:
 * FairShare of that model ranks their tenants, and the first one's oldest waiter gets it (FIFO
 * within a tenant). Slots taken without waiting are charged too, so a tenant that has been using
 * the slots does not jump ahead of one that waited. A granted slot is taken (counted in flight)
 * before the waiter resumes, so no request arriving in between can have it.
 *
 * Per hub process and synchronous: `pump()` after anything that may free a slot (a call ending,
 * new settings) hands out what it can at once.
 */
export class SlotQueue<S> {
  /** Every waiter, oldest first. */
  private readonly waiters: Waiter<S>[] = [];
  /** One pool per served model: its slots are what its deployments' max_concurrency bounds. */
  private readonly pools = new Map<string, FairShare>();

  constructor(
    private readonly source: SlotSource<S>,
    /** Read at each wait (the settings may change): how long a request waits, and how many wait at most. */
    private readonly bounds: () => { waitMs: number; max: number },
  ) {}

  /** Requests waiting now. */
  get size(): number {
    return this.waiters.length;
  }

  /** Records a slot of `model` taken without waiting. */
  charge(tenant: string, model: string, weight: number): void {
    this.pool(model).charge(tenant, 1, weight);
  }

  /**
   * Waits for a slot of one of the chain's models; resolves with it (already taken: the caller
   * must release it) or with why there is none. Leaves nothing behind either way: no timer, no
   * listener on `signal`.
   */
  wait(tenant: string, weight: number, chain: readonly string[], signal: AbortSignal): Promise<SlotWait<S>> {
    const { waitMs, max } = this.bounds();
    if (waitMs <= 0) return Promise.resolve({ refused: 'off' });
    if (this.waiters.length >= max) return Promise.resolve({ refused: 'full' });
    if (signal.aborted) return Promise.resolve({ refused: 'aborted' });
    return new Promise((resolve) => {
      const waiter: Waiter<S> = {
        tenant,
        weight,
        chain,
        resolve,
        signal,
        onAbort: () => this.end(waiter, { refused: 'aborted' }),
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      waiter.timer = setTimeout(() => this.end(waiter, { refused: 'timeout' }), waitMs);
      this.waiters.push(waiter);
      // A slot may be free for it already (it came in while others waited): hand out what there is.
      this.pump();
    });
  }

  /** Hands free slots to waiters, fairly, until none is free or no waiter can use one; refuses those that waiting cannot help. */
  pump(): void {
    if (this.waiters.length === 0) return;
    const waitable = new Map<string, boolean>();
    for (const w of [...this.waiters]) {
      const key = w.chain.join('\n');
      let ok = waitable.get(key);
      if (ok === undefined) waitable.set(key, (ok = this.source.waitable(w.chain)));
      if (!ok) this.end(w, { refused: 'unavailable' });
    }
    while (this.grantOne());
  }

  /** One free slot to the waiter it is due to; false when there is nothing to grant. */
  private grantOne(): boolean {
    const looked = new Set<string>();
    // The models in the order the oldest waiters prefer them.
    for (const w of this.waiters) {
      for (const model of w.chain) {
        if (looked.has(model)) continue;
        looked.add(model);
        const slot = this.source.acquire(model);
        if (slot === undefined) continue;
        const next = this.dueFor(model);
        this.pool(model).charge(next.tenant, 1, next.weight);
        this.end(next, { slot, model });
        return true;
      }
    }
    return false;
  }

  /** The waiter a slot of `model` goes to: the oldest of the tenant FairShare ranks first among those waiting for it. */
  private dueFor(model: string): Waiter<S> {
    const oldest = new Map<string, Waiter<S>>();
    for (const w of this.waiters) if (!oldest.has(w.tenant) && w.chain.includes(model)) oldest.set(w.tenant, w);
    const [first] = this.pool(model).rank([...oldest.keys()]);
    return oldest.get(first) as Waiter<S>;
  }

  private end(waiter: Waiter<S>, outcome: SlotWait<S>): void {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    clearTimeout(waiter.timer);
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(outcome);
  }

  private pool(model: string): FairShare {
    let pool = this.pools.get(model);
    if (!pool) this.pools.set(model, (pool = new FairShare()));
    return pool;
  }
}
