import { MessageOrder, taskIdOf } from '../../src/modules/realtime/message-order.js';

/** A promise the test settles by hand, to hold a handler at its await. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const ticks = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('MessageOrder: one connection’s messages', () => {
  it('runs results of different tasks side by side', async () => {
    const order = new MessageOrder(Promise.resolve(true));
    const log: string[] = [];
    const held = gate();
    order.result('a', async () => {
      log.push('a start');
      await held.promise;
      log.push('a end');
    });
    order.result('b', async () => {
      log.push('b');
    });
    await ticks();
    expect(log).toEqual(['a start', 'b']);
    held.open();
    await order.drained();
    expect(log).toEqual(['a start', 'b', 'a end']);
  });

  it('keeps two results of the same task in order', async () => {
    const order = new MessageOrder(Promise.resolve(true));
    const log: string[] = [];
    const held = gate();
    order.result('a', async () => {
      await held.promise;
      log.push('a#1');
    });
    order.result('a', async () => {
      log.push('a#2');
    });
    await ticks();
    expect(log).toEqual([]);
    held.open();
    await order.drained();
    expect(log).toEqual(['a#1', 'a#2']);
  });

  it('an ordered message waits for every result before it; a result waits for the ordered ones before it', async () => {
    const order = new MessageOrder(Promise.resolve(true));
    const log: string[] = [];
    const held = gate();
    const register = gate();
    order.ordered(async (g) => {
      await register.promise;
      log.push('register');
      return g;
    });
    order.result('a', async () => {
      log.push('a start');
      await held.promise;
      log.push('a end');
    });
    order.ordered(async (g) => {
      log.push('log line');
      return g;
    });
    order.result('b', async () => {
      log.push('b');
    });
    await ticks();
    expect(log).toEqual([]); // everything waits for the registration
    register.open();
    await ticks();
    expect(log).toEqual(['register', 'a start']); // the log line waits for a; b for the log line
    held.open();
    await order.drained();
    expect(log).toEqual(['register', 'a start', 'a end', 'log line', 'b']);
  });

  it('passes the gate on: a refused connection handles nothing after it', async () => {
    const order = new MessageOrder(Promise.resolve(false));
    const seen: boolean[] = [];
    order.result('a', async (g) => void seen.push(g));
    order.ordered(async (g) => {
      seen.push(g);
      return g;
    });
    expect(await order.drained()).toBe(false);
    expect(seen).toEqual([false, false]);
  });

  it('a failing result does not stop the messages after it', async () => {
    const order = new MessageOrder(Promise.resolve(true));
    const log: string[] = [];
    order.result('a', async () => {
      throw new Error('boom');
    });
    order.ordered(async (g) => {
      log.push('after');
      return g;
    });
    await order.drained();
    expect(log).toEqual(['after']);
  });

  it('past 64 results in flight, the next one waits for them like any message', async () => {
    const order = new MessageOrder(Promise.resolve(true));
    const held = gate();
    let running = 0;
    let most = 0;
    for (let i = 0; i < 70; i++)
      order.result(`t${i}`, async () => {
        running += 1;
        most = Math.max(most, running);
        await held.promise;
        running -= 1;
      });
    await ticks();
    expect(running).toBe(64);
    held.open();
    await order.drained();
    expect(most).toBe(64);
    expect(running).toBe(0);
  });

  it('reads the task id only when it is a string (anything else is handled in order)', () => {
    expect(taskIdOf({ task_id: 'x' })).toBe('x');
    expect(taskIdOf({ task_id: 42 })).toBeUndefined();
    expect(taskIdOf(null)).toBeUndefined();
    expect(taskIdOf('task')).toBeUndefined();
    expect(taskIdOf(undefined)).toBeUndefined();
  });
});
