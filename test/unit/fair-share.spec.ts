import { FairShare, weightOf } from '../../src/modules/concurrency/fair-share.js';
import { type NodeSlot, planWithShared } from '../../src/modules/dispatch/assignment.js';

/** Grants one unit at a time to the first-ranked tenant with work, `n` times: who got each. */
function serve(fair: FairShare, backlog: Record<string, number>, weights: Record<string, number>, n: number): string[] {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    const waiting = Object.keys(backlog).filter((t) => backlog[t] > 0);
    if (waiting.length === 0) break;
    const [t] = fair.rank(waiting);
    backlog[t]--;
    fair.charge(t, 1, weights[t] ?? 1);
    got.push(t);
  }
  return got;
}

describe('FairShare: start-time fair queuing between tenants (issue 29)', () => {
  it('one unit at a time, equal weights alternate', () => {
    expect(serve(new FairShare(), { a: 10, b: 10 }, {}, 6)).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('weights 3 : 1 give three turns for each one', () => {
    const got = serve(new FairShare(), { a: 100, b: 100 }, { a: 3, b: 1 }, 40);
    expect(got.filter((t) => t === 'a')).toHaveLength(30);
  });

  it('a tenant arriving after a long run of another earns no debt and no credit: it takes turns at once', () => {
    const fair = new FairShare();
    serve(fair, { a: 1000 }, {}, 1000);
    const got = serve(fair, { a: 1000, b: 5 }, {}, 10);
    expect(got).toEqual(['b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a']);
  });

  it('an idle tenant does not bank turns to burst with later', () => {
    const fair = new FairShare();
    serve(fair, { a: 10, b: 10 }, {}, 20);
    serve(fair, { a: 100 }, {}, 100); // b idle meanwhile
    const got = serve(fair, { a: 100, b: 100 }, {}, 10);
    expect(got.filter((t) => t === 'b').length).toBeLessThanOrEqual(6);
  });

  it('interleave orders a batch as the turns would go, priority order kept within each tenant', () => {
    const fair = new FairShare();
    const items = ['a1', 'a2', 'a3', 'a4', 'b1', 'b2'].map((id) => ({ id, tenant: id[0] }));
    const order = fair
      .interleave(
        items,
        (x) => x.tenant,
        () => 1,
      )
      .map((x) => x.id);
    expect(order).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'a4']);
    // One tenant alone: untouched.
    expect(
      fair
        .interleave(
          items.slice(0, 4),
          (x) => x.tenant,
          () => 1,
        )
        .map((x) => x.id),
    ).toEqual(['a1', 'a2', 'a3', 'a4']);
  });

  it('weightOf: a positive number, else 1', () => {
    expect(weightOf({ weight: 2.5 })).toBe(2.5);
    expect(weightOf({ weight: 0 })).toBe(1);
    expect(weightOf({ weight: 'x' })).toBe(1);
    expect(weightOf(undefined)).toBe(1);
  });
});

describe('planWithShared (issue 29)', () => {
  const task = (id: string, tenant: string) => ({
    id,
    tenant_id: tenant,
    type: 't',
    required_tags: [],
    target_node_id: null,
  });
  const node = (id: string, tenant: string, capacity: number, shared = false): NodeSlot => ({
    id,
    tenant_id: tenant,
    capacity,
    running: 0,
    tags: [],
    capabilities: [],
    shared,
  });

  it("a tenant's own nodes first, then the shared ones in the order given; other tenants' own nodes never", () => {
    const tasks = [task('a1', 'a'), task('a2', 'a'), task('a3', 'a'), task('b1', 'b'), task('b2', 'b')];
    const nodes = [node('own-a', 'a', 1), node('own-c', 'c', 5), node('pool', 'default', 2, true)];
    const plan = planWithShared(tasks, nodes, 'least-loaded', 0, Math.random, new Map(), (rest) => [...rest].reverse());
    expect(plan.assignments).toEqual([
      { id: 'a1', node_id: 'own-a' },
      { id: 'b2', node_id: 'pool' },
      { id: 'b1', node_id: 'pool' },
    ]);
  });
});
