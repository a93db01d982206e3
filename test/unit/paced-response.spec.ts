import { Writable } from 'node:stream';
import { PacedResponse } from '../../src/modules/edge/paced-response.js';

/** A client that takes nothing until `release()`: every write stays queued (hwm 16 bytes). */
function stalledClient(): { res: Writable; release: () => void } {
  const pending: (() => void)[] = [];
  const res = new Writable({
    highWaterMark: 16,
    write: (_chunk, _enc, done) => void pending.push(() => done()),
  });
  return { res, release: () => pending.splice(0).forEach((done) => done()) };
}

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
};

describe('PacedResponse: a streamed answer paced by its client', () => {
  it('says go on while the client keeps up, and wait (until drain) once it is behind', async () => {
    const { res, release } = stalledClient();
    const drops: number[] = [];
    const paced = new PacedResponse(
      res,
      () => 1000,
      () => drops.push(1),
    );
    expect(paced.write('0123456789')).toBeUndefined();
    const wait = paced.write('0123456789');
    expect(wait).toBeInstanceOf(Promise);
    expect(paced.stalled).toBe(true);
    expect(await settled(wait as Promise<void>)).toBe(false);
    release();
    release(); // the second write reaches _write after the first completes
    expect(await settled(wait as Promise<void>)).toBe(true);
    expect(paced.stalled).toBe(false);
    expect(drops).toEqual([]);
  });

  it('past the limit, drops the answer once: destroyed, later writes ignored', () => {
    const { res } = stalledClient();
    const drops: number[] = [];
    const paced = new PacedResponse(
      res,
      () => 40,
      () => drops.push(1),
    );
    for (let i = 0; i < 4; i++) void paced.write('0123456789');
    expect(res.destroyed).toBe(false);
    expect(paced.write('0123456789')).toBeUndefined(); // 50 bytes queued > 40
    expect(res.destroyed).toBe(true);
    expect(paced.write('more')).toBeUndefined();
    paced.drop();
    expect(drops).toEqual([1]);
  });

  it('a wait ends when the response closes', async () => {
    const { res } = stalledClient();
    const paced = new PacedResponse(
      res,
      () => 1000,
      () => undefined,
    );
    void paced.write('0123456789');
    const wait = paced.write('0123456789') as Promise<void>;
    res.destroy();
    expect(await settled(wait)).toBe(true);
    expect(paced.stalled).toBe(false);
  });
});
