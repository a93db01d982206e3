import { Injectable } from '@nestjs/common';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import {
  type AssignmentRef,
  type ClassWindow,
  type KeyLimit,
  type OpenNode,
  type ReadyTask,
  TaskAssignmentsRepository,
  type TenantKey,
} from '../tasks/task-assignments.repository.js';
import type { TaskRow } from '../tasks/task.types.js';
import { RATE_WINDOW_MS } from '../concurrency/concurrency-window.js';
import { FairShare, weightOf } from '../concurrency/fair-share.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { type Candidate, type KeyRoom, planWithShared, type Strategy } from './assignment.js';

export type { AssignmentRef };

/** The task fields routing rules can test (`task.type`, `task.priority`, `task.tags`, `task.metadata.*`). */
export interface RoutableTask {
  /** Its tenant: only that tenant's rules route it. */
  tenant_id: string;
  type: string;
  priority: number;
  tags: string[];
  metadata: Record<string, unknown>;
}

/** Extra windows one round may read for classes its first read left with room (each twice the last). */
const MAX_EXTRA_WINDOWS = 8;
/** The largest window one class reads at once. */
const MAX_WINDOW = 4096;

type RoutedTask = ReadyTask & Candidate;

/** Each node's load once the planned assignments are added. */
function loadAfter(nodes: OpenNode[], assignments: { node_id: string }[]): Map<string, number> {
  const load = new Map(nodes.map((n) => [n.id, n.running]));
  for (const a of assignments) load.set(a.node_id, (load.get(a.node_id) ?? 0) + 1);
  return load;
}

/** Adds limited keys not seen yet in this round (a later window's) to its room. */
function noteLimits(room: KeyRoom, limits: KeyLimit[]): void {
  for (const l of limits) {
    const k = `${l.tenant_id}\n${l.key}`;
    if (!room.has(k)) room.set(k, l.room);
  }
}

const tenantKeyOf = (k: string): TenantKey => {
  const at = k.indexOf('\n');
  return { tenant_id: k.slice(0, at), key: k.slice(at + 1) };
};

/** A rolling window never re-arms sooner than this (the database's now() and ours move apart by a query's time). */
const MIN_REOPEN_MS = 20;

/** When the first key held by its rolling window may start again (ms since epoch), if any. */
function firstOpening(limits: KeyLimit[]): number | undefined {
  let soonest: number | undefined;
  for (const l of limits)
    if (l.room <= 0 && l.opens_in_ms !== null)
      soonest = Math.min(soonest ?? Infinity, Math.max(l.opens_in_ms, MIN_REOPEN_MS));
  return soonest === undefined ? undefined : Date.now() + soonest;
}

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether a node of this class (tenant, tags, capabilities; or shared, tags, capabilities) still has a free slot. */
function classHasRoom(w: ClassWindow, nodes: OpenNode[], load: Map<string, number>): boolean {
  return nodes.some(
    (n) =>
      (w.shared ? n.shared : !n.shared && n.tenant_id === w.tenant_id) &&
      sameSet(n.tags, w.tags) &&
      sameSet(n.capabilities, w.capabilities) &&
      (load.get(n.id) ?? 0) < n.capacity,
  );
}

export interface RoundResult {
  assigned: Assigned[];
  cursor: number;
  /** Some planned assignments were not made (a row locked by someone else, a key's room gone). */
  short: boolean;
  /** When a concurrency key held by its rolling window opens (ms since epoch): worth a round then. */
  opensAt?: number;
}

export interface Assigned {
  task: TaskRow;
  vocabulary: NodeVocabulary;
}

/**
 * The assignment statement failed at a point where it may have committed (the connection
 * died before its answer came): these rows may be dispatched in the database without anyone told.
 */
export class UncertainAssignment extends Error {
  constructor(
    readonly rows: AssignmentRef[],
    readonly cause: unknown,
  ) {
    super(`dispatch round of ${rows.length} task(s) may or may not have committed`);
  }
}

/**
 * A dispatch round: read the nodes with room and, per class of them, the ready tasks that class
 * may take (no head-of-line blocking: docs/devices-and-nodes.md), plan in memory, then one
 * statement locks those nodes (SKIP LOCKED, so two hub processes never hand out the same slot)
 * and recounts their load, claims the tasks still pending (SKIP LOCKED), and records every
 * assignment with its event — committed together before anything is sent. The statements are
 * the tasks module's (TaskAssignmentsRepository); the planning is this module's.
 */
@Injectable()
export class DispatchRound {
  /** Turns of the tenants on shared nodes (docs/flow-control.md, "Fairness"). */
  private readonly fair = new FairShare();

  constructor(
    private readonly assignments: TaskAssignmentsRepository,
    private readonly tenants: TenantsService,
  ) {}

  /** The weights of the tenants of these tasks not known yet this round (cached limits: no query most rounds). */
  private async addWeights(tasks: ReadyTask[], weights: Map<string, number>): Promise<void> {
    const missing = [...new Set(tasks.map((t) => t.tenant_id))].filter((t) => !weights.has(t));
    const limits = await Promise.all(missing.map((t) => this.tenants.limitsOf(t)));
    missing.forEach((t, i) => weights.set(t, weightOf(limits[i])));
  }

  /**
   * Plans own nodes first, then the shared ones with the tenants interleaved by weight; the
   * shared nodes' assignments are charged to their tenants' turns at once (a lost write later
   * costs a tenant one turn, never gives one).
   */
  private plan(
    tasks: RoutedTask[],
    nodes: OpenNode[],
    strategy: Strategy,
    cursor: number,
    keyRoom: KeyRoom,
    weights: Map<string, number>,
  ): { assignments: { id: string; node_id: string }[]; cursor: number } {
    const weight = (t: string): number => weights.get(t) ?? 1;
    const plan = planWithShared(tasks, nodes, strategy, cursor, Math.random, keyRoom, (rest) =>
      this.fair.interleave(rest, (t) => t.tenant_id, weight),
    );
    const shared = new Set(nodes.filter((n) => n.shared).map((n) => n.id));
    if (shared.size === 0) return plan;
    const tenantOf = new Map(tasks.map((t) => [t.id, t.tenant_id]));
    const granted = new Map<string, number>();
    for (const a of plan.assignments) {
      if (!shared.has(a.node_id)) continue;
      const t = tenantOf.get(a.id) as string;
      granted.set(t, (granted.get(t) ?? 0) + 1);
    }
    // In the order the turns were taken, so the clock ends at the latest turn.
    for (const t of this.fair.rank([...granted.keys()])) this.fair.charge(t, granted.get(t) as number, weight(t));
    return plan;
  }

  /**
   * @param probe check the ready index first (rounds woken by a freed slot usually find nothing;
   *   rounds woken by new tasks skip it).
   */
  async assignBatch(
    maxTasks: number,
    strategy: Strategy,
    cursor: number,
    probe = true,
    route: (task: RoutableTask) => Candidate['route'] | undefined = () => undefined,
  ): Promise<RoundResult> {
    if (probe && !(await this.assignments.anyReady())) return { assigned: [], cursor, short: false };
    // 1. Read, without locks: the nodes with room and, per class of them, the ready tasks it may
    // take (none of a held concurrency key), and the room of each limited key with waiting work.
    const { nodes, tasks, windows, limits } = await this.assignments.candidates(maxTasks);
    const opensAt = firstOpening(limits);
    if (tasks.length === 0) return { assigned: [], cursor, short: false, opensAt };
    const keyRoom: KeyRoom = new Map();
    noteLimits(keyRoom, limits);
    const withRoutes = (ts: ReadyTask[]): RoutedTask[] => ts.map((t) => ({ ...t, route: route(t) }));
    const read: RoutedTask[] = withRoutes(tasks);
    const pooled = nodes.some((n) => n.shared);
    const weights = new Map<string, number>();
    if (pooled) await this.addWeights(read, weights);
    let plan = this.plan(read, nodes, strategy, cursor, keyRoom, weights);
    // 2. Read on for classes left with room while their window was full: its tasks went to
    // other classes or were sent elsewhere by a routing rule; the queue goes on behind them.
    let ends = windows;
    for (let more = 0; more < MAX_EXTRA_WINDOWS && plan.assignments.length < maxTasks; more++) {
      const load = loadAfter(nodes, plan.assignments);
      const starved = ends.filter((w) => w.taken === w.lim && classHasRoom(w, nodes, load));
      if (starved.length === 0) break;
      // Each further window twice the last: a long run of tasks the class cannot place (a rule's
      // backlog) is read past in few reads, each continuing where the last stopped.
      // Keys the plan has filled are skipped by the next window as held keys are.
      const full = [...keyRoom].filter(([, room]) => room <= 0).map(([k]) => tenantKeyOf(k));
      const next = await this.assignments.moreCandidates(
        starved.map((w) => ({ ...w, lim: Math.min(MAX_WINDOW, w.lim * 2) })),
        full,
      );
      noteLimits(keyRoom, next.limits);
      const planned = new Set(plan.assignments.map((a) => a.id));
      const fresh = withRoutes(next.tasks.filter((t) => !planned.has(t.id)));
      if (fresh.length === 0) break;
      read.push(...fresh);
      if (pooled) await this.addWeights(fresh, weights);
      const extra = this.plan(
        fresh,
        nodes.map((n) => ({ ...n, running: load.get(n.id) ?? n.running })),
        strategy,
        plan.cursor,
        keyRoom,
        weights,
      );
      plan = { assignments: [...plan.assignments, ...extra.assignments], cursor: extra.cursor };
      ends = next.windows;
    }
    if (plan.assignments.length === 0) return { assigned: [], cursor: plan.cursor, short: false, opensAt };
    const planned = plan.assignments.slice(0, maxTasks);
    // Each assignment's place among its node's (1, 2, …): the write checks it against the room left.
    const seen = new Map<string, number>();
    const numbered = planned.map((a) => {
      const seq = (seen.get(a.node_id) ?? 0) + 1;
      seen.set(a.node_id, seq);
      return { ...a, seq };
    });
    // 2. Write, in one statement (its own transaction, with its events). One round trip here
    // instead of four (begin, pick, assign, commit) under the previous explicit transaction.
    // The limited keys among them: their write takes the keys' locks and counts their room again.
    const byId = new Map(read.map((t) => [t.id, t]));
    const limited = new Set<string>();
    for (const a of planned) {
      const t = byId.get(a.id);
      const k = t?.concurrency_key ? `${t.tenant_id}\n${t.concurrency_key}` : undefined;
      if (k !== undefined && keyRoom.has(k)) limited.add(k);
    }
    let rows: TaskRow[];
    try {
      rows = await this.assignments.assignToNodes(numbered, [...limited].map(tenantKeyOf));
    } catch (e) {
      // The statement may have committed before its answer was lost (connection cut).
      throw new UncertainAssignment(
        planned.map((a) => ({ id: a.id, node_id: a.node_id, attempt: (byId.get(a.id)?.attempt ?? 0) + 1 })),
        e,
      );
    }
    // A key this round filled may be held by its rolling window from now on: look again when a
    // window from now has passed (harmless for a key held by max_running: a round that finds it held).
    const filled = [...keyRoom.values()].some((room) => room <= 0);
    const reopen = filled ? Date.now() + RATE_WINDOW_MS : undefined;
    const vocabulary = new Map(nodes.map((n) => [n.id, n.vocabulary]));
    return {
      assigned: rows.map((task) => ({ task, vocabulary: vocabulary.get(task.node_id as string) ?? 'device' })),
      cursor: plan.cursor,
      short: rows.length < planned.length,
      opensAt: opensAt === undefined || reopen === undefined ? (opensAt ?? reopen) : Math.min(opensAt, reopen),
    };
  }

  /**
   * Of assignments whose commit was uncertain, those that did commit (still dispatched to the
   * same node, same attempt), with the node's vocabulary: they are to be delivered now.
   */
  confirmAssignments(rows: AssignmentRef[]): Promise<Assigned[]> {
    return this.assignments.confirmAssignments(rows);
  }
}
