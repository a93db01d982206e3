import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { NodeVocabulary } from '../../common/events/event-bus.js';
import { prepared } from '../../database/prepared.js';
import { KEY_LIMITS, keyCounts, keyRoom, notHeld } from '../concurrency/concurrency.repository.js';
import { HELD_STATES, S, sqlStates } from './task-state.js';
import { ASSIGN, lit } from './task-transitions.repository.js';
import type { NewTask, TaskRow } from './task.types.js';

/** A node with room, as the dispatcher plans with it. */
export interface OpenNode {
  id: string;
  tenant_id: string;
  capacity: number;
  running: number;
  tags: string[];
  capabilities: string[];
  vocabulary: NodeVocabulary;
  /** It serves every tenant (docs/flow-control.md, "Fairness"). */
  shared: boolean;
}

/** A ready task, with what routing rules and eligibility look at. */
export interface ReadyTask {
  id: string;
  tenant_id: string;
  type: string;
  required_tags: string[];
  target_node_id: string | null;
  priority: number;
  tags: string[];
  metadata: Record<string, unknown>;
  attempt: number;
  concurrency_key: string | null;
}

/**
 * A limited key with waiting work, as the round plans with it: how many more of its tasks may
 * start now (`room`, ≤ 0 when held) and, when its rolling window holds it, when that opens.
 */
export interface KeyLimit {
  tenant_id: string;
  key: string;
  room: number;
  /** Held by its rolling window: the window opens in this many ms. */
  opens_in_ms: number | null;
}

/** One planned assignment: the task, its node and its place among that node's (1, 2, …). */
export interface PlannedAssignment {
  id: string;
  node_id: string;
  seq: number;
}

/** Which assignment may have been written: the task, its node and the attempt it would have. */
export type AssignmentRef = Pick<TaskRow, 'id' | 'node_id' | 'attempt'>;

/**
 * Where one class's window of ready tasks stopped: the class (tenant, tags, capabilities; a
 * class of shared nodes has one window per tenant with ready work, `shared`), how many it asked
 * for (`lim`) and got (`taken`), and its last task's sort key (the next window starts after it).
 */
export interface ClassWindow {
  tenant_id: string;
  tags: string[];
  capabilities: string[];
  shared: boolean;
  lim: number;
  taken?: number;
  after_priority: number | null;
  after_created_at: string | null;
  after_id: string | null;
}

export interface Candidates {
  nodes: OpenNode[];
  tasks: ReadyTask[];
  windows: ClassWindow[];
  /** Every limited key with waiting work (none for a deployment without limits). */
  limits: KeyLimit[];
}

/** A tenant's key. */
export interface TenantKey {
  tenant_id: string;
  key: string;
}

/** Ready tasks read per free slot of a class: room for tasks its plan cannot place (rules, overlaps). */
const WINDOW_PER_SLOT = 4;

const READY_COLUMNS =
  'id, tenant_id, type, required_tags, target_node_id, priority, tags, metadata, attempt, concurrency_key';

/**
 * Shared by both reads, after a `classes` CTE (tenant_id, tags, capabilities, shared, lim, after_*):
 * - `queues`: the distinct (tenant, tag_key, type) of pending untargeted work of those tenants,
 *   by a loose scan of IDX_tasks_ready_queue (one index probe per queue, however long each
 *   queue is; `tag_key` is the required tags as text, whose operators PostgreSQL may use as index
 *   conditions under row-level security, where the array's are not);
 * - `picked`: for each class, its best `lim` tasks over the queues it may take (required tags
 *   ⊆ its tags, type among its capabilities or any), each queue an index range in priority
 *   order, after the class's cursor when it has one;
 * - `window_ends`: each class's window: how many it got and its last task.
 * A task whose concurrency key is held (`held_keys`, docs/flow-control.md) is skipped inside the
 * index range, so a held key's backlog never takes a window (no head-of-line blocking); a task
 * without a key is let through by its NULL before the lookup.
 */
const QUEUES_AND_WINDOWS = `queues AS (
         SELECT f.* FROM (SELECT DISTINCT tenant_id FROM classes) o CROSS JOIN LATERAL (
           SELECT tenant_id, tag_key, type, required_tags FROM tasks
           WHERE status = ${lit(S.pending)} AND target_node_id IS NULL AND tenant_id = o.tenant_id
           ORDER BY tenant_id, tag_key, type LIMIT 1
         ) f
         UNION ALL
         -- The next queue is the next index entry after this one's key; the walk ends at the tenant's
         -- last (tested outside: inside, tenant_id = … would make the scan start at the tenant's first entry).
         SELECT nx.* FROM queues q CROSS JOIN LATERAL (
           SELECT tenant_id, tag_key, type, required_tags FROM tasks
           WHERE status = ${lit(S.pending)} AND target_node_id IS NULL
             AND (tenant_id, tag_key, type) > (q.tenant_id, q.tag_key, q.type)
           ORDER BY tenant_id, tag_key, type LIMIT 1
         ) nx WHERE nx.tenant_id = q.tenant_id
       ), windows AS (
         SELECT cl.tenant_id, cl.tags, cl.capabilities, cl.shared, cl.lim, w.id, w.priority, w.created_at,
                row_number() OVER (PARTITION BY cl.tenant_id, cl.tags, cl.capabilities, cl.shared
                                   ORDER BY w.priority DESC, w.created_at, w.id) AS n
         FROM classes cl CROSS JOIN LATERAL (
           SELECT t.id, t.priority, t.created_at FROM queues q CROSS JOIN LATERAL (
             SELECT t.id, t.priority, t.created_at FROM tasks t
             WHERE t.status = ${lit(S.pending)} AND t.target_node_id IS NULL AND t.tenant_id = q.tenant_id
               AND t.tag_key = q.tag_key AND t.type = q.type AND t.run_at <= now() AND ${notHeld('t')}
               AND (cl.after_id IS NULL OR t.priority < cl.after_priority
                    OR (t.priority = cl.after_priority AND (t.created_at, t.id) > (cl.after_created_at, cl.after_id)))
             ORDER BY t.priority DESC, t.created_at, t.id LIMIT cl.lim
           ) t
           WHERE q.tenant_id = cl.tenant_id AND q.required_tags <@ cl.tags
             AND (cardinality(cl.capabilities) = 0 OR q.type = ANY (cl.capabilities))
           ORDER BY t.priority DESC, t.created_at, t.id LIMIT cl.lim
         ) w
       ), picked AS (
         SELECT DISTINCT id FROM windows
       ), window_ends AS (
         SELECT DISTINCT ON (tenant_id, tags, capabilities, shared) tenant_id, tags, capabilities, shared, lim, n::int AS taken,
                priority AS after_priority, created_at AS after_created_at, id AS after_id
         FROM windows ORDER BY tenant_id, tags, capabilities, shared, n DESC
       )`;

/**
 * The round's write: each node locked and its load counted again, each task claimed only if
 * still pending and its node has room for its `seq`. `keyed`: also at most each limited key's
 * room (counted now, under its lock: assignToNodes), in priority order within the key.
 */
function assignSql(keyed: boolean): string {
  const capped = keyed
    ? `, ok AS (
         SELECT c.id, c.node_id FROM (
           SELECT c.*, row_number() OVER (PARTITION BY c.tenant_id, c.concurrency_key ORDER BY c.priority DESC, c.created_at, c.id) AS k
           FROM c
         ) c
         LEFT JOIN (
           SELECT l.tenant_id, l.key, ${keyRoom('l')} AS room FROM concurrency_limits l ${keyCounts('l')}
           WHERE (l.tenant_id, l.key) IN (SELECT tenant_id, concurrency_key FROM c)
         ) r ON r.tenant_id = c.tenant_id AND r.key = c.concurrency_key
         WHERE r.key IS NULL OR c.k <= r.room
       )`
    : '';
  return `WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS a(id uuid, node_id text, seq int)),
       n AS (
         SELECT n.id, n.tenant_id, n.shared, n.capacity,
                (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN (${sqlStates(HELD_STATES)})) AS running
         FROM nodes n
         WHERE n.id IN (SELECT node_id FROM a) AND n.status = 'online' AND NOT n.draining
         ORDER BY n.id FOR UPDATE OF n SKIP LOCKED
       ), c AS (
         SELECT t.id, a.node_id${keyed ? ', t.tenant_id, t.concurrency_key, t.priority, t.created_at' : ''}
         FROM tasks t JOIN a ON a.id = t.id JOIN n ON n.id = a.node_id AND (n.shared OR n.tenant_id = t.tenant_id)
         WHERE t.status = ${lit(ASSIGN.from[0])} AND t.run_at <= now() AND a.seq <= n.capacity - n.running
         ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
       )${capped}, u AS (
         UPDATE tasks t SET status = ${lit(ASSIGN.to)}, node_id = c.node_id, worker_id = NULL, attempt = t.attempt + 1,
           dispatched_at = now(), delivered_at = now(), delivery_count = 1,
           started_at = NULL, completed_at = NULL, progress = 0, progress_message = NULL,
           lease_expires_at = now() + make_interval(secs => t.timeout_seconds), updated_at = now()
         FROM ${keyed ? 'ok' : 'c'} c WHERE t.id = c.id AND t.status = ${lit(ASSIGN.from[0])}
         RETURNING t.*
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
         SELECT id, 'dispatched', 'Dispatched to node ' || node_id, attempt, jsonb_build_object('node_id', node_id), u.tenant_id FROM u
       )
       SELECT * FROM u`;
}

/**
 * The dispatcher's reads and its pending → dispatched write. They join `nodes` for the live
 * load of each node, which is counted from the tasks it holds, so they live with the tasks.
 */
@Injectable()
export class TaskAssignmentsRepository {
  constructor(private readonly db: DataSource) {}

  /** Whether any task is ready (the ready index; rounds woken by a freed slot usually find none). */
  async anyReady(): Promise<boolean> {
    const [{ ready }]: { ready: boolean }[] = await this.db.query(
      `SELECT EXISTS (SELECT 1 FROM tasks WHERE status = ${lit(S.pending)} AND run_at <= now()) AS ready`,
    );
    return ready;
  }

  /**
   * Read, without locks: the nodes with room (with their live load) and, for each class of them
   * (tenant, tags, capabilities), the best ready tasks that class may take — never the best
   * tasks overall, so work no open node can take never stands in front of work one can
   * (docs/devices-and-nodes.md, "No head-of-line blocking"). Each class's window holds up to 4 tasks per free slot; `windows` says
   * where each stopped, so the round can read on past tasks its plan could not place.
   */
  async candidates(maxTasks: number): Promise<Candidates> {
    const [{ nodes, tasks, windows, limits }] = await prepared<Candidates>(
      this.db,
      'dispatch_candidates',
      `WITH RECURSIVE open AS (
         SELECT * FROM (
           SELECT n.id, n.tenant_id, n.capacity, n.tags, n.capabilities, n.vocabulary, n.shared,
                  (SELECT count(*)::int FROM tasks t WHERE t.node_id = n.id AND t.status IN (${sqlStates(HELD_STATES)})) AS running
           FROM nodes n
           WHERE n.status = 'online' AND NOT n.draining ORDER BY n.id
         ) n WHERE running < capacity
       ), ready_tenants AS (
         -- Only with a shared node open: the tenants with untargeted pending work, one index probe
         -- each (a loose scan of IDX_tasks_ready_queue), whom a shared class reads a window for.
         SELECT f.tenant_id FROM (
           SELECT tenant_id FROM tasks WHERE status = ${lit(S.pending)} AND target_node_id IS NULL ORDER BY tenant_id LIMIT 1
         ) f WHERE EXISTS (SELECT 1 FROM open WHERE shared)
         UNION ALL
         SELECT nx.tenant_id FROM ready_tenants r CROSS JOIN LATERAL (
           SELECT tenant_id FROM tasks WHERE status = ${lit(S.pending)} AND target_node_id IS NULL AND tenant_id > r.tenant_id
           ORDER BY tenant_id LIMIT 1
         ) nx
       ), classes AS (
         SELECT tenant_id, tags, capabilities, false AS shared, LEAST($1::int, sum(capacity - running)::int * ${WINDOW_PER_SLOT}) AS lim,
                NULL::smallint AS after_priority, NULL::timestamptz AS after_created_at, NULL::uuid AS after_id
         FROM open WHERE NOT shared GROUP BY tenant_id, tags, capabilities
         UNION ALL
         SELECT r.tenant_id, s.tags, s.capabilities, true, s.lim, NULL::smallint, NULL::timestamptz, NULL::uuid
         FROM (
           SELECT tags, capabilities, LEAST($1::int, sum(capacity - running)::int * ${WINDOW_PER_SLOT}) AS lim
           FROM open WHERE shared GROUP BY tags, capabilities
         ) s CROSS JOIN ready_tenants r
       ), ${KEY_LIMITS},
       held_keys AS (SELECT tenant_id, key FROM key_limits WHERE room <= 0),
       ${QUEUES_AND_WINDOWS},
       targeted AS (
         SELECT t.id FROM open o CROSS JOIN LATERAL (
           SELECT id FROM tasks t
           WHERE t.status = ${lit(S.pending)} AND t.target_node_id = o.id AND t.tenant_id = o.tenant_id AND t.run_at <= now()
             AND ${notHeld('t')}
           ORDER BY t.priority DESC, t.created_at, t.id LIMIT (o.capacity - o.running) * ${WINDOW_PER_SLOT}
         ) t
       ), c AS (
         SELECT ${READY_COLUMNS} FROM tasks
         -- = ANY (ARRAY(…)): primary-key probes however many rows the planner guesses the windows hold
         -- (a guess inflated by the shared classes turned this into a scan of every task)
         WHERE id = ANY (ARRAY(SELECT id FROM picked UNION SELECT id FROM targeted)) AND status = ${lit(S.pending)}
         ORDER BY priority DESC, created_at, id
       )
       SELECT (SELECT COALESCE(json_agg(open), '[]'::json) FROM open) AS nodes,
              (SELECT COALESCE(json_agg(c), '[]'::json) FROM c) AS tasks,
              (SELECT COALESCE(json_agg(w), '[]'::json) FROM window_ends w) AS windows,
              (SELECT COALESCE(json_agg(k), '[]'::json) FROM key_limits k) AS limits`,
      [maxTasks],
    );
    return { nodes, tasks, windows, limits };
  }

  /**
   * The next windows of the classes whose plan left free slots while their window was full
   * (tasks a routing rule sends elsewhere, or taken by an overlapping class): the ready tasks
   * each may take after where its last window stopped.
   */
  async moreCandidates(after: ClassWindow[], full: TenantKey[]): Promise<Omit<Candidates, 'nodes'>> {
    const [{ tasks, windows, limits }] = await prepared<Omit<Candidates, 'nodes'>>(
      this.db,
      'dispatch_more_candidates',
      `WITH RECURSIVE classes AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS c(tenant_id text, tags text[], capabilities text[], shared boolean, lim int,
           after_priority smallint, after_created_at timestamptz, after_id uuid)
       ), ${KEY_LIMITS},
       -- held now, or filled by the round's plan so far
       held_keys AS (
         SELECT tenant_id, key FROM key_limits WHERE room <= 0
         UNION ALL SELECT tenant_id, key FROM jsonb_to_recordset($2::jsonb) AS h(tenant_id text, key text)
       ), ${QUEUES_AND_WINDOWS},
       c AS (
         SELECT ${READY_COLUMNS} FROM tasks WHERE id = ANY (ARRAY(SELECT id FROM picked)) AND status = ${lit(S.pending)}
         ORDER BY priority DESC, created_at, id
       )
       SELECT (SELECT COALESCE(json_agg(c), '[]'::json) FROM c) AS tasks,
              (SELECT COALESCE(json_agg(w), '[]'::json) FROM window_ends w) AS windows,
              (SELECT COALESCE(json_agg(k), '[]'::json) FROM key_limits k) AS limits`,
      [JSON.stringify(after), JSON.stringify(full)],
    );
    return { tasks, windows, limits };
  }

  /**
   * The round's assignments, in one statement (its own transaction, with its events): each
   * node locked and its load counted again, each task claimed only if still pending and its
   * node has room for its `seq`. Anything locked by someone else right now (another hub's
   * round, a completion) is skipped, never waited for; what is skipped stays pending for the
   * next round. A task goes only to a node of its own tenant (the dispatcher runs as the
   * system and sees every tenant's rows; the plan matches tenants too).
   */
  async assignToNodes(planned: PlannedAssignment[], limited: TenantKey[] = []): Promise<TaskRow[]> {
    if (limited.length === 0)
      return prepared<TaskRow>(this.db, 'dispatch_assign', assignSql(false), [JSON.stringify(planned)]);
    // Tasks of limited keys (docs/flow-control.md, "Across hubs"): the keys' limit rows are locked
    // first, in one order (no deadlock between rounds), so rounds of every hub assigning a key
    // take turns; the assignment is then a new statement, whose snapshot sees what the previous
    // holder of the lock committed, and counts each key's room again before it takes any.
    return this.db.transaction(async (m) => {
      await m.query(
        `SELECT 1 FROM concurrency_limits
         WHERE (tenant_id, key) IN (SELECT * FROM jsonb_to_recordset($1::jsonb) AS k(tenant_id text, key text))
         ORDER BY tenant_id, key FOR UPDATE`,
        [JSON.stringify(limited)],
      );
      return prepared<TaskRow>(m, 'dispatch_assign_keyed', assignSql(true), [JSON.stringify(planned)]);
    });
  }

  /**
   * Assignment at intake (docs/dispatch.md, "One commit per pickup"): inserts one submitted
   * task and, in the same statement, hands it to the least-loaded open node that may take it,
   * so a submission to an idle fleet costs one commit instead of three round trips (insert,
   * the round's read, its write). Only when nothing is waiting that the task would overtake:
   * no task of the caller's context (its tenant under row-level security; every tenant for the
   * system) is pending and ready. The node is locked (SKIP LOCKED, as the round does) and its
   * load counted; with no such node the task is inserted pending, as by insertMany. Events:
   * `created`, and `dispatched` with it. Undefined when its idempotency key already exists.
   */
  async insertAssigned(task: NewTask): Promise<{ row: TaskRow; vocabulary: NodeVocabulary | null } | undefined> {
    const [found] = await prepared<TaskRow & { vocabulary: NodeVocabulary | null }>(
      this.db,
      'tasks_insert_assigned',
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
           id uuid, type text, prompt text, data jsonb, priority smallint, tags text[], required_tags text[], work_directory text,
           environment text, files jsonb, target_node_id text, max_retries int, timeout_seconds int,
           metadata jsonb, idempotency_key text, traceparent text, tracestate text, concurrency_key text)
       ), pick AS (
         SELECT n.id, n.vocabulary FROM input i CROSS JOIN nodes n CROSS JOIN LATERAL (
           SELECT count(*)::int AS running FROM tasks t WHERE t.node_id = n.id AND t.status IN (${sqlStates(HELD_STATES)})
         ) l
         WHERE n.status = 'online' AND NOT n.draining AND n.tenant_id = taskhub_current_tenant_for_insert()
           AND CASE WHEN i.target_node_id IS NOT NULL THEN n.id = i.target_node_id
                    ELSE (cardinality(n.capabilities) = 0 OR i.type = ANY (n.capabilities)) AND i.required_tags <@ n.tags END
           AND l.running < n.capacity
           AND NOT EXISTS (SELECT 1 FROM tasks WHERE status = ${lit(S.pending)} AND run_at <= now())
           -- a task of a limited key waits for the round, which counts its key under the key's lock
           AND (i.concurrency_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM concurrency_limits l WHERE l.tenant_id = n.tenant_id AND l.key = i.concurrency_key))
         -- least-loaded, as planAssignments: lowest share in use, then most free slots, then id
         ORDER BY l.running::float8 / n.capacity, n.capacity - l.running DESC, n.id
         LIMIT 1 FOR UPDATE OF n SKIP LOCKED
       ), ins AS (
         INSERT INTO tasks (id, type, prompt, data, priority, tags, required_tags, work_directory, environment, files,
                            target_node_id, max_retries, timeout_seconds, run_at, metadata, idempotency_key,
                            traceparent, tracestate, concurrency_key,
                            status, node_id, attempt, dispatched_at, delivered_at, delivery_count, lease_expires_at)
         SELECT i.id, i.type, i.prompt, i.data, i.priority, i.tags, i.required_tags, i.work_directory, i.environment, i.files,
                i.target_node_id, i.max_retries, i.timeout_seconds, now(), i.metadata, i.idempotency_key,
                i.traceparent, i.tracestate, i.concurrency_key,
                CASE WHEN p.id IS NULL THEN ${lit(S.pending)} ELSE ${lit(ASSIGN.to)} END, p.id,
                CASE WHEN p.id IS NULL THEN 0 ELSE 1 END,
                CASE WHEN p.id IS NULL THEN NULL ELSE now() END, CASE WHEN p.id IS NULL THEN NULL ELSE now() END,
                CASE WHEN p.id IS NULL THEN 0 ELSE 1 END,
                CASE WHEN p.id IS NULL THEN NULL ELSE now() + make_interval(secs => i.timeout_seconds) END
         FROM input i LEFT JOIN pick p ON true
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING *
       ), ev AS (
         INSERT INTO task_events (task_id, type, message, attempt, data, tenant_id)
         SELECT id, 'created', 'Task created', 0, NULL, ins.tenant_id FROM ins
         UNION ALL
         SELECT id, 'dispatched', 'Dispatched to node ' || node_id, attempt, jsonb_build_object('node_id', node_id), ins.tenant_id
         FROM ins WHERE node_id IS NOT NULL
       )
       SELECT ins.*, (SELECT vocabulary FROM pick) AS vocabulary FROM ins`,
      [JSON.stringify([task])],
    );
    if (!found) return undefined;
    const { vocabulary, ...row } = found;
    return { row, vocabulary };
  }

  /**
   * Of assignments whose commit was uncertain, those that did commit (still dispatched to the
   * same node, same attempt), with the node's vocabulary: they are to be delivered now.
   */
  async confirmAssignments(rows: AssignmentRef[]): Promise<{ task: TaskRow; vocabulary: NodeVocabulary }[]> {
    const found: (TaskRow & { vocabulary: NodeVocabulary })[] = await this.db.query(
      `SELECT t.*, n.vocabulary FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, node_id text, attempt int)
       JOIN tasks t ON t.id = x.id AND t.node_id = x.node_id AND t.attempt = x.attempt AND t.status = ${lit(ASSIGN.to)}
       JOIN nodes n ON n.id = t.node_id AND (n.shared OR n.tenant_id = t.tenant_id)`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, node_id: r.node_id, attempt: r.attempt })))],
    );
    return found.map(({ vocabulary, ...task }) => ({ task, vocabulary }));
  }
}
