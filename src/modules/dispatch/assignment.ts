/** A node with room, as the dispatcher sees it inside one assignment transaction. */
export interface NodeSlot {
  id: string;
  /** Its tenant: it runs only its tenant's tasks (absent in plans of one tenant). */
  tenant_id?: string;
  capacity: number;
  running: number;
  tags: string[];
  capabilities: string[];
  /** It serves every tenant (docs/flow-control.md, "Fairness"). */
  shared?: boolean;
}

export interface Candidate {
  id: string;
  tenant_id?: string;
  type: string;
  required_tags: string[];
  target_node_id: string | null;
  concurrency_key?: string | null;
  /** What a routing rule asks for this task: extra node tags, and its own strategy. */
  route?: { tags: string[]; strategy?: Strategy };
}

export type Strategy = 'least-loaded' | 'round-robin' | 'random';

/**
 * Can this node run this task? Its tenant's nodes (or a shared node) only; asked-for node first;
 * else capabilities (task types; none = any) and tags.
 */
export function isEligible(task: Candidate, node: NodeSlot): boolean {
  if (!node.shared && (task.tenant_id ?? null) !== (node.tenant_id ?? null)) return false;
  if (task.target_node_id !== null) return task.target_node_id === node.id;
  if (node.capabilities.length > 0 && !node.capabilities.includes(task.type)) return false;
  return (
    task.required_tags.every((t) => node.tags.includes(t)) &&
    (task.route?.tags ?? []).every((t) => node.tags.includes(t))
  );
}

/** The room of limited keys, by `tenant\nkey`: a plan takes from it (keys not in it are unlimited). */
export type KeyRoom = Map<string, number>;

const roomKey = (task: Candidate): string | undefined =>
  task.concurrency_key ? `${task.tenant_id ?? ''}\n${task.concurrency_key}` : undefined;

/**
 * Assigns tasks (already in priority order) to nodes with free slots. Pure: the caller
 * passes the round-robin cursor and the random source, and gets the new cursor back.
 * `keyRoom` (updated in place, shared by the plans of one round): a task of a limited key is
 * planned only while its key has room.
 */
export function planAssignments(
  tasks: Candidate[],
  nodes: NodeSlot[],
  strategy: Strategy,
  cursor = 0,
  random: () => number = Math.random,
  keyRoom: KeyRoom = new Map(),
): { assignments: { id: string; node_id: string }[]; cursor: number } {
  const load = new Map(nodes.map((n) => [n.id, n.running]));
  const free = (n: NodeSlot): boolean => (load.get(n.id) ?? 0) < n.capacity;
  const assignments: { id: string; node_id: string }[] = [];
  for (const task of tasks) {
    const key = roomKey(task);
    const room = key === undefined ? undefined : keyRoom.get(key);
    if (room !== undefined && room <= 0) continue;
    const eligible = nodes.filter((n) => free(n) && isEligible(task, n));
    if (eligible.length === 0) continue;
    if (room !== undefined) keyRoom.set(key as string, room - 1);
    let chosen: NodeSlot;
    const how = task.route?.strategy ?? strategy;
    if (how === 'round-robin') {
      chosen = eligible[cursor % eligible.length];
      cursor++;
    } else if (how === 'random') {
      chosen = eligible[Math.floor(random() * eligible.length)];
    } else {
      // least-loaded: lowest share of capacity in use, then most free slots, then id (stable).
      chosen = eligible.reduce((best, n) => {
        const a = (load.get(n.id) ?? 0) / n.capacity;
        const b = (load.get(best.id) ?? 0) / best.capacity;
        if (a !== b) return a < b ? n : best;
        const fa = n.capacity - (load.get(n.id) ?? 0);
        const fb = best.capacity - (load.get(best.id) ?? 0);
        return fa > fb ? n : best;
      });
    }
    load.set(chosen.id, (load.get(chosen.id) ?? 0) + 1);
    assignments.push({ id: task.id, node_id: chosen.id });
  }
  return { assignments, cursor };
}

/**
 * A round's plan when some nodes are shared (docs/flow-control.md, "Fairness"): the tasks go to
 * their tenants' own nodes first, in priority order; what is left goes to the shared nodes in
 * the order `interleave` gives (tenants taking turns by weight). Without shared nodes, the one
 * plan of planAssignments.
 */
export function planWithShared<T extends Candidate>(
  tasks: T[],
  nodes: NodeSlot[],
  strategy: Strategy,
  cursor: number,
  random: () => number,
  keyRoom: KeyRoom,
  interleave: (rest: T[]) => T[],
): { assignments: { id: string; node_id: string }[]; cursor: number } {
  const shared = nodes.filter((n) => n.shared);
  if (shared.length === 0) return planAssignments(tasks, nodes, strategy, cursor, random, keyRoom);
  const own = planAssignments(
    tasks,
    nodes.filter((n) => !n.shared),
    strategy,
    cursor,
    random,
    keyRoom,
  );
  const placed = new Set(own.assignments.map((a) => a.id));
  const rest = interleave(tasks.filter((t) => !placed.has(t.id)));
  const pooled = planAssignments(rest, shared, strategy, own.cursor, random, keyRoom);
  return { assignments: [...own.assignments, ...pooled.assignments], cursor: pooled.cursor };
}
