/** Choosing one target (service instance, node) among eligible candidates by a rule's strategy. */

export const STRATEGIES = ['round_robin', 'least_connections', 'random', 'weighted', 'hash'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface Candidate {
  id: string;
  /** Live load: open connections or held tasks. */
  connections: number;
  /** Relative share for `weighted`; default 1, 0 or less takes nothing while others can. */
  weight?: number;
}

/** Round-robin positions per scope (e.g. per rule), kept by the caller between picks. */
export class RoundRobinCursor {
  private readonly positions = new Map<string, number>();

  next(scope: string, size: number): number {
    const at = this.positions.get(scope) ?? 0;
    this.positions.set(scope, (at + 1) % 1_000_000_000);
    return at % size;
  }
}

export interface PickOptions {
  cursor?: RoundRobinCursor;
  /** Round-robin scope in the cursor; default `default`. */
  scope?: string;
  /** A uniform [0, 1) source, for tests. */
  random?: () => number;
}

/** FNV-1a, 32 bits: stable across processes and restarts. */
export function stableHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const byId = (a: Candidate, b: Candidate): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function leastConnections(sorted: Candidate[]): Candidate {
  return sorted.reduce((best, c) => (c.connections < best.connections ? c : best));
}

function weighted(sorted: Candidate[], random: () => number): Candidate {
  const weights = sorted.map((c) => Math.max(0, c.weight ?? 1));
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return sorted[Math.floor(random() * sorted.length)];
  let r = random() * total;
  for (let i = 0; i < sorted.length; i++) {
    if (weights[i] <= 0) continue;
    r -= weights[i];
    if (r < 0) return sorted[i];
  }
  // Rounding left r at the very top: the last candidate with weight takes it.
  let last = sorted.length - 1;
  while (last > 0 && weights[last] <= 0) last--;
  return sorted[last];
}

/** Rendezvous hashing: the same key keeps its target, and losing one target moves only its keys. */
function hashed(sorted: Candidate[], key: string): Candidate {
  let best = sorted[0];
  let bestScore = -1;
  for (const c of sorted) {
    const score = stableHash(`${key}\u0000${c.id}`);
    if (score > bestScore) [best, bestScore] = [c, score];
  }
  return best;
}

/**
 * One candidate by strategy, or null when there is none. Candidates are ordered by id first so
 * the answer does not depend on the caller's order. `hash` without a key, and `round_robin`
 * without a cursor, fall back to least connections.
 */
export function pickTarget<T extends Candidate>(
  strategy: Strategy,
  candidates: readonly T[],
  key?: string,
  options: PickOptions = {},
): T | null {
  if (candidates.length === 0) return null;
  const sorted = [...candidates].sort(byId);
  const random = options.random ?? Math.random;
  switch (strategy) {
    case 'round_robin': {
      const cursor = options.cursor;
      return cursor ? sorted[cursor.next(options.scope ?? 'default', sorted.length)] : (leastConnections(sorted) as T);
    }
    case 'least_connections':
      return leastConnections(sorted) as T;
    case 'random':
      return sorted[Math.min(sorted.length - 1, Math.floor(random() * sorted.length))];
    case 'weighted':
      return weighted(sorted, random) as T;
    case 'hash':
      return (key === undefined || key === '' ? leastConnections(sorted) : hashed(sorted, key)) as T;
    default:
      return null;
  }
}
