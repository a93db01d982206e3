/** A tenant's weight when its limits name none (docs/flow-control.md, "Fairness"). */
export const DEFAULT_WEIGHT = 1;

/** Tenants remembered at most before those with no credit left are forgotten (they start at the clock anyway). */
const MAX_REMEMBERED = 1000;

/**
 * Start-time fair queuing between tenants over one pool of shared capacity (shared devices, global
 * pull workers, a gateway deployment's slots): each grant of a unit to a tenant of weight `w` moves
 * its virtual time on by `1 / w`, and the next unit goes to the tenant whose next start is the
 * earliest. A tenant that was idle starts at the pool's clock (the start of the latest grant), so
 * idling earns no credit to burst with later, and one arriving behind a long backlog of another
 * takes turns with it at once instead of waiting for it to drain. Priority orders work within a
 * tenant; this orders the tenants. A single tenant alone gets everything.
 *
 * Per process: several hubs each share their own grants fairly, which interleaves the tenants
 * across them too. Pure and synchronous: callers pass the weights.
 */
export class FairShare {
  /** Each tenant's virtual finish: where its next unit starts, unless the clock is past it. */
  private readonly finish = new Map<string, number>();
  /** The start of the latest grant: where an idle tenant starts. */
  private clock = 0;

  /** The tenants it remembers a turn of (others start at the clock). */
  tenants(): string[] {
    return [...this.finish.keys()];
  }

  /** Where the tenant's next unit starts. */
  startOf(tenant: string): number {
    return Math.max(this.finish.get(tenant) ?? 0, this.clock);
  }

  /** The tenants in the order their next unit would be granted (ties: the order given). */
  rank(tenants: readonly string[]): string[] {
    return tenants
      .map((t, i) => ({ t, i, s: this.startOf(t) }))
      .sort((a, b) => a.s - b.s || a.i - b.i)
      .map((x) => x.t);
  }

  /**
   * Items of several tenants interleaved in the order their units would be granted: the k-th
   * item of a tenant (in the order given, i.e. its priority order) starts at its start + k / w.
   * Stable: ties keep the order given.
   */
  interleave<T>(items: readonly T[], tenantOf: (item: T) => string, weightOf: (tenant: string) => number): T[] {
    const seen = new Map<string, number>();
    const tagged = items.map((item, i) => {
      const tenant = tenantOf(item);
      const k = seen.get(tenant) ?? 0;
      seen.set(tenant, k + 1);
      return { item, i, s: this.startOf(tenant) + k / weightOf(tenant) };
    });
    if (seen.size <= 1) return [...items];
    return tagged.sort((a, b) => a.s - b.s || a.i - b.i).map((x) => x.item);
  }

  /** Records `count` units granted to the tenant (its weight `weight`). */
  charge(tenant: string, count: number, weight: number): void {
    if (count <= 0) return;
    const start = this.startOf(tenant);
    this.finish.set(tenant, start + count / weight);
    this.clock = Math.max(this.clock, start + (count - 1) / weight);
    if (this.finish.size > MAX_REMEMBERED) for (const [t, f] of this.finish) if (f <= this.clock) this.finish.delete(t);
  }
}

/** A weight from a tenant's limits: a positive number, else the default. */
export function weightOf(limits: { weight?: unknown } | undefined): number {
  const w = limits?.weight;
  return typeof w === 'number' && Number.isFinite(w) && w > 0 ? w : DEFAULT_WEIGHT;
}
