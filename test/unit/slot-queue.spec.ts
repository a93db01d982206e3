import { getEventListeners } from 'node:events';
import { type SlotSource, type SlotWait, SlotQueue } from '../../src/modules/llm/slot-queue.js';

/** Slots per model as plain counters: what the router's deployments are to the queue. */
class Slots implements SlotSource<string> {
  readonly free = new Map<string, number>();
  cooling = false;
  acquire(model: string): string | undefined {
    const n = this.free.get(model) ?? 0;
    if (n <= 0) return undefined;
    this.free.set(model, n - 1);
    return model;
  }
  waitable(): boolean {
    return !this.cooling;
  }
  release(model: string): void {
    this.free.set(model, (this.free.get(model) ?? 0) + 1);
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SlotQueue', () => {
  let slots: Slots;
  let queue: SlotQueue<string>;
  let bounds: { waitMs: number; max: number };
  /** Who got each slot, in grant order. */
  let granted: string[];
  /** Stops whoever still waits at the end of a test (no timer outlives it). */
  let teardown: AbortController;

  beforeEach(() => {
    teardown = new AbortController();
    slots = new Slots();
    bounds = { waitMs: 10_000, max: 1000 };
    queue = new SlotQueue(slots, () => bounds);
    granted = [];
  });
  afterEach(() => {
    teardown.abort('client_closed');
    expect(queue.size).toBe(0);
  });

  const waitAs = (label: string, tenant: string, weight = 1, chain = ['m'], signal = teardown.signal) =>
    queue.wait(tenant, weight, chain, signal).then((w) => {
      if ('slot' in w) granted.push(label);
      return w;
    });

  /** Frees one slot of `m` `n` times (a call ends, the next waiter due starts), recording who got each. */
  const serve = async (n: number, model = 'm'): Promise<void> => {
    for (let i = 0; i < n; i++) {
      slots.release(model);
      queue.pump();
      await flush();
    }
  };

  it('a single tenant gets every slot, first come first served', async () => {
    const all = ['a1', 'a2', 'a3', 'a4'].map((l) => waitAs(l, 'A'));
    expect(queue.size).toBe(4);
    await serve(4);
    await Promise.all(all);
    expect(granted).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(queue.size).toBe(0);
  });

  it('a tenant arriving behind another one’s backlog takes turns with it at once', async () => {
    for (let i = 1; i <= 8; i++) void waitAs(`a${i}`, 'A');
    for (let i = 1; i <= 3; i++) void waitAs(`b${i}`, 'B');
    await serve(11);
    expect(granted).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'b3', 'a4', 'a5', 'a6', 'a7', 'a8']);
  });

  it('slots taken without waiting count: the tenant that used them waits behind the one that waited', async () => {
    for (let i = 0; i < 3; i++) queue.charge('A', 'm', 1);
    void waitAs('a1', 'A');
    void waitAs('b1', 'B');
    void waitAs('b2', 'B');
    await serve(3);
    // B starts at the pool's clock (no credit for idling), A one unit past it: B first, then turns.
    expect(granted).toEqual(['b1', 'a1', 'b2']);
  });

  it('shares by weight: weight 3 gets three slots for one', async () => {
    for (let i = 1; i <= 20; i++) void waitAs(`a${i}`, 'A', 3);
    for (let i = 1; i <= 20; i++) void waitAs(`b${i}`, 'B', 1);
    await serve(16);
    const a = granted.filter((g) => g.startsWith('a')).length;
    expect(a).toBe(12);
    expect(granted.length - a).toBe(4);
  });

  it('a freed slot goes only to waiters that can use it; a fallback model serves a chain that names it', async () => {
    void waitAs('x', 'A', 1, ['x']);
    void waitAs('y-or-x', 'B', 1, ['y', 'x']);
    await serve(1, 'y');
    expect(granted).toEqual(['y-or-x']);
    await serve(1, 'x');
    expect(granted).toEqual(['y-or-x', 'x']);
  });

  it('keeps a granted slot: it is taken before the waiter resumes', async () => {
    const w = waitAs('a1', 'A');
    slots.release('m');
    queue.pump();
    expect(slots.acquire('m')).toBeUndefined(); // a newcomer in between finds none
    expect(await w).toEqual({ slot: 'm', model: 'm' });
  });

  it('a waiter finds a slot that is free when it arrives', async () => {
    slots.release('m');
    expect(await queue.wait('A', 1, ['m'], new AbortController().signal)).toEqual({ slot: 'm', model: 'm' });
  });

  it('refuses at once when waiting is off or the queue is full', async () => {
    bounds = { waitMs: 0, max: 10 };
    expect(await queue.wait('A', 1, ['m'], new AbortController().signal)).toEqual({ refused: 'off' });
    bounds = { waitMs: 1000, max: 2 };
    const first = [waitAs('a1', 'A'), waitAs('a2', 'A')];
    expect(await queue.wait('B', 1, ['m'], new AbortController().signal)).toEqual({ refused: 'full' });
    await serve(2);
    await Promise.all(first);
    expect(granted).toEqual(['a1', 'a2']);
  });

  it('times a waiter out, leaving no listener and no timer', async () => {
    bounds = { waitMs: 50, max: 10 };
    const stop = new AbortController();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const w = queue.wait('A', 1, ['m'], stop.signal);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    expect(await w).toEqual({ refused: 'timeout' });
    expect(queue.size).toBe(0);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(timersBefore);
  });

  it('removes an aborted waiter at once: the next one gets the slot, nothing is left behind', async () => {
    const stop = new AbortController();
    const gone = waitAs('a1', 'A', 1, ['m'], stop.signal);
    const next = waitAs('a2', 'A');
    stop.abort('client_closed');
    expect(await gone).toEqual({ refused: 'aborted' });
    expect(queue.size).toBe(1);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    await serve(1);
    await next;
    expect(granted).toEqual(['a2']);
    expect(slots.free.get('m')).toBe(0);
  });

  it('refuses a waiter that was aborted before it came, and clears a granted waiter’s listener', async () => {
    const stop = new AbortController();
    stop.abort('interrupted');
    expect(await queue.wait('A', 1, ['m'], stop.signal)).toEqual({ refused: 'aborted' });
    const live = new AbortController();
    const w = queue.wait('A', 1, ['m'], live.signal);
    await serve(1);
    expect(((await w) as SlotWait<string> & { slot: string }).slot).toBe('m');
    expect(getEventListeners(live.signal, 'abort')).toHaveLength(0);
  });

  it('refuses the waiters waiting cannot help any more (every deployment cooling down)', async () => {
    const w = waitAs('a1', 'A');
    slots.cooling = true;
    queue.pump();
    expect(await w).toEqual({ refused: 'unavailable' });
    expect(queue.size).toBe(0);
  });
});
