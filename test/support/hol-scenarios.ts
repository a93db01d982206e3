import { mulberry32 } from './dispatch-fleet.js';

// Random fleets and backlogs for the head-of-line invariant suite (test/e2e/dispatch-no-hol):
// one seed gives one iteration, so a failing one is replayed from its seed.

export const TAGS = ['a', 'b', 'c', 'd'];
export const TYPES = ['t1', 't2', 't3'];
export const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
/** What a routing rule does in iterations that have one: tasks of type t3 go to nodes tagged c. */
export const RULE = { type: 't3', tags: ['c'] };

export interface Spec {
  id: string;
  tenant: 'A' | 'B';
  capacity: number;
  tags: string[];
  capabilities: string[];
  /** connected before submission chunk `slot` (= chunks: after the last) */
  slot: number;
}

/** The hot queue of an iteration: `share` of its tasks have this shape. */
export interface Hot {
  share: number;
  tenant: 'A' | 'B';
  type: string;
  priority: string;
  required_tags: string[];
  target_node_id?: string;
}

export interface Iteration {
  seed: number;
  devices: Spec[];
  ghosts: string[];
  rules: ('A' | 'B')[];
  profile: Record<string, unknown> & { hot: Hot | null };
  /** per tenant, the submission chunks */
  chunks: { A: Record<string, unknown>[]; B: Record<string, unknown>[] }[];
  total: number;
}

/** A random fleet and backlog from one seed: the same seed gives the same iteration (but for the clock in run_at). */
export function generate(seed: number): Iteration {
  const rng = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)];
  const shuffle = <T>(xs: T[]): T[] => {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  const subset = <T>(xs: T[], p: number): T[] => xs.filter(() => rng() < p);

  const chunkCount = int(1, 4);
  const devices: Spec[] = Array.from({ length: int(4, 10) }, (_, k) => {
    let capabilities = rng() < 0.4 ? [] : subset(TYPES, 0.5);
    if (capabilities.length === 0 && rng() < 0.5) capabilities = [pick(TYPES)];
    return {
      id: `r${seed}-d${k}`,
      tenant: rng() < 0.5 ? 'A' : 'B',
      capacity: int(1, 3),
      // In random order: [a,b] and [b,a] are the same tags to eligibility, not to a GROUP BY.
      tags: shuffle(subset(TAGS, 0.5)),
      capabilities,
      // Before the backlog, after it (its head then already in place), or in between.
      slot: ((r) => (r < 0.4 ? 0 : r < 0.7 ? chunkCount : int(1, chunkCount)))(rng()),
    };
  });
  const ghosts = Array.from({ length: int(1, 3) }, (_, k) => `r${seed}-ghost${k}`);
  const rules = (['A', 'B'] as const).filter(() => rng() < 0.5);

  // A profile per iteration. Most have a hot queue: a share of the backlog that is one task
  // shape (type, required tags, maybe asked for one device) at high or urgent priority, so it
  // stands at the head — a tag nobody has, a type a rule sends elsewhere, another tenant's
  // device, a device that never connected, or just a long queue some nodes may take.
  const profile = {
    tasks: int(100, 400),
    tag_p: 0.05 + rng() * 0.4,
    zz_p: rng() * 0.2,
    type_weights: TYPES.map(() => 0.1 + rng()),
    share_a: 0.2 + rng() * 0.6,
    target_p: rng() * 0.25,
    delay_p: rng() * 0.15,
    hot: null as null | Hot,
  };
  const typeOf = (): string => {
    let x = rng() * profile.type_weights.reduce((s, w) => s + w, 0);
    for (let i = 0; i < TYPES.length; i++) if ((x -= profile.type_weights[i]) < 0) return TYPES[i];
    return TYPES[TYPES.length - 1];
  };
  const requiredTags = (): string[] => [
    ...shuffle(subset(TAGS, profile.tag_p)),
    ...(rng() < profile.zz_p ? ['zz'] : []),
  ];
  const targets = [...devices.map((d) => d.id), ...ghosts];
  if (rng() < 0.6) {
    // With a rule, often the type it routes, of a tenant it applies to: a head only some nodes may take.
    const routed = rules.length > 0 && rng() < 0.5;
    profile.hot = {
      share: 0.2 + rng() * 0.5,
      tenant: routed ? pick([...rules]) : rng() < 0.5 ? 'A' : 'B',
      type: routed ? RULE.type : typeOf(),
      priority: rng() < 0.7 ? 'urgent' : 'high',
      required_tags: requiredTags(),
      ...(rng() < 0.3 ? { target_node_id: pick(targets) } : {}),
    };
  }
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const backlog = Array.from({ length: profile.tasks }, (_, j) => {
    const hot = profile.hot;
    if (hot && rng() < hot.share) {
      const { share: _share, ...shape } = hot;
      return { ...shape, prompt: `r${seed}-${j} (hot)` };
    }
    const task: Record<string, unknown> & { tenant: 'A' | 'B' } = {
      tenant: rng() < profile.share_a ? 'A' : 'B',
      type: typeOf(),
      prompt: `r${seed}-${j}`,
      priority: pick(PRIORITIES),
      required_tags: requiredTags(),
    };
    // Asked for a device of either tenant, connected or never connected.
    if (rng() < profile.target_p) task.target_node_id = pick(targets);
    if (rng() < profile.delay_p) task.run_at = later;
    return task;
  });
  const shuffled = shuffle(backlog);
  const chunks = Array.from({ length: chunkCount }, (_, c) => {
    const part = shuffled.slice(
      Math.floor((c * shuffled.length) / chunkCount),
      Math.floor(((c + 1) * shuffled.length) / chunkCount),
    );
    const strip = ({ tenant: _tenant, ...rest }: Record<string, unknown>): Record<string, unknown> => rest;
    return {
      A: part.filter((x) => x.tenant === 'A').map(strip),
      B: part.filter((x) => x.tenant === 'B').map(strip),
    };
  });
  return { seed, devices, ghosts, rules, profile, chunks, total: backlog.length };
}
