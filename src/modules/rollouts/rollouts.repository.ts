import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type {
  ReleaseOutcome,
  RolloutCounts,
  RolloutInput,
  RolloutNodeRow,
  RolloutRow,
  RolloutStatus,
} from './rollout.types.js';

/** Thrown inside a create's transaction to roll it back; never leaves the repository. */
class Refused extends Error {
  constructor(readonly outcome: CreateOutcome) {
    super('refused');
  }
}

export type CreateOutcome = { row: RolloutRow; targeted: number } | { missing: string[] } | { empty: true };

/** An in-progress rollout's state after a change: its new counts, and what to cancel if it ended. */
export interface EvaluationOutcome {
  row: RolloutRow;
  counts: RolloutCounts;
  /** Set when this call ended it: its tasks not finished yet. */
  ended?: { status: RolloutStatus; open: string[] };
}

/** The change a caller decides from a locked rollout and its counts. */
export interface RolloutChange {
  status?: Exclude<RolloutStatus, 'in_progress'>;
  reason?: string;
  next_release_at?: Date;
}

/** Every outcome of a rollout's nodes, from rollout_nodes and their tasks (one pass over the rollout's nodes). */
const COUNT_COLUMNS = `
  count(*) FILTER (WHERE rn.released_at IS NULL)::int AS queued,
  count(*) FILTER (WHERE rn.error IS NOT NULL)::int AS rejected,
  count(*) FILTER (WHERE t.status = 'pending')::int AS pending,
  count(*) FILTER (WHERE t.status = 'dispatched')::int AS dispatched,
  count(*) FILTER (WHERE t.status = 'running')::int AS running,
  count(*) FILTER (WHERE t.status = 'completed')::int AS completed,
  count(*) FILTER (WHERE t.status = 'failed')::int AS failed,
  count(*) FILTER (WHERE t.status = 'timed_out')::int AS timed_out,
  count(*) FILTER (WHERE t.status = 'cancelled')::int AS cancelled`;
const COUNTS = `SELECT ${COUNT_COLUMNS} FROM rollout_nodes rn LEFT JOIN tasks t ON t.id = rn.task_id WHERE rn.rollout_id = $1`;
const COUNTS_OF = `
  SELECT rn.rollout_id, ${COUNT_COLUMNS} FROM rollout_nodes rn LEFT JOIN tasks t ON t.id = rn.task_id
  WHERE rn.rollout_id = ANY($1::uuid[]) GROUP BY rn.rollout_id`;

/**
 * `rollouts` and `rollout_nodes`, under the caller's tenant (row-level security). Reads the
 * `nodes` table to resolve a target (in the create's transaction, so the targeted set is the one
 * the rollout was created with) and `tasks` for per-node states (joined by primary key).
 */
@Injectable()
export class RolloutsRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Creates the rollout and one queued row per targeted node in one transaction: nodes with every
   * target tag, plus the named ones (which must exist). Nothing is written when a named node is
   * unknown, or when nothing matches and `allowEmpty` is false.
   */
  async create(input: RolloutInput, allowEmpty: boolean): Promise<CreateOutcome> {
    try {
      return await this.db.transaction(async (tx) => {
        if (input.target_node_ids.length) {
          const found: { id: string }[] = await tx.query(
            `SELECT id FROM nodes WHERE id = ANY($1::text[]) AND kind <> 'worker'`,
            [input.target_node_ids],
          );
          const known = new Set(found.map((f) => f.id));
          const missing = input.target_node_ids.filter((id) => !known.has(id));
          if (missing.length) throw new Refused({ missing });
        }
        const [row]: RolloutRow[] = await tx.query(
          `INSERT INTO rollouts (name, task, target_tags, target_node_ids, rate, abort, include_future_nodes)
           VALUES ($1, $2::jsonb, $3::text[], $4::text[], $5::jsonb, $6::jsonb, $7) RETURNING *`,
          [
            input.name,
            JSON.stringify(input.task),
            input.target_tags,
            input.target_node_ids,
            input.rate === null ? null : JSON.stringify(input.rate),
            JSON.stringify(input.abort),
            input.include_future_nodes,
          ],
        );
        const [{ n }]: { n: number }[] = await tx.query(
          `WITH ins AS (
             INSERT INTO rollout_nodes (rollout_id, node_id, tenant_id)
             SELECT $1, n.id, $4 FROM nodes n
             WHERE n.kind <> 'worker'
               AND ((cardinality($2::text[]) > 0 AND n.tags @> $2::text[]) OR n.id = ANY($3::text[]))
             ORDER BY n.id
             RETURNING 1)
           SELECT count(*)::int AS n FROM ins`,
          [row.id, input.target_tags, input.target_node_ids, row.tenant_id],
        );
        if (n === 0 && !allowEmpty) throw new Refused({ empty: true });
        const [updated]: RolloutRow[] = await tx.query(
          `WITH u AS (UPDATE rollouts SET queued = $2 WHERE id = $1 RETURNING *) SELECT * FROM u`,
          [row.id, n],
        );
        return { row: updated, targeted: n };
      });
    } catch (e) {
      if (e instanceof Refused) return e.outcome;
      throw e;
    }
  }

  async list(limit: number, offset: number): Promise<{ rows: RolloutRow[]; total: number }> {
    const [rows, [{ total }]] = await Promise.all([
      this.db.query(`SELECT * FROM rollouts ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`, [
        limit,
        offset,
      ]) as Promise<RolloutRow[]>,
      this.db.query(`SELECT count(*)::int AS total FROM rollouts`) as Promise<{ total: number }[]>,
    ]);
    return { rows, total };
  }

  async findById(id: string): Promise<RolloutRow | undefined> {
    const rows: RolloutRow[] = await this.db.query(`SELECT * FROM rollouts WHERE id = $1`, [id]);
    return rows[0];
  }

  /** Each targeted node with its task's state, in release order (then queue order). */
  async nodes(id: string, limit: number): Promise<RolloutNodeRow[]> {
    return this.db.query(
      `SELECT rn.node_id, rn.task_id, rn.released_at, rn.error, t.status AS task_status
       FROM rollout_nodes rn LEFT JOIN tasks t ON t.id = rn.task_id
       WHERE rn.rollout_id = $1 ORDER BY rn.seq LIMIT $2`,
      [id, limit],
    );
  }

  /** Live counts of several rollouts in one grouped pass (a list page's). */
  async countsOf(ids: string[]): Promise<Map<string, RolloutCounts>> {
    if (ids.length === 0) return new Map();
    const rows: (RolloutCounts & { rollout_id: string })[] = await this.db.query(COUNTS_OF, [ids]);
    return new Map(rows.map(({ rollout_id, ...c }) => [rollout_id, c]));
  }

  async counts(id: string): Promise<RolloutCounts> {
    return this.countsIn(this.db.manager, id);
  }

  private async countsIn(m: EntityManager, id: string): Promise<RolloutCounts> {
    const [c]: RolloutCounts[] = await m.query(COUNTS, [id]);
    return c;
  }

  /** The earliest next release of any rollout with queued nodes (every tenant's: run as the system). */
  async nextDue(): Promise<Date | null> {
    const [r]: { at: Date | null }[] = await this.db.query(
      `SELECT min(next_release_at) AS at FROM rollouts WHERE status = 'in_progress' AND queued > 0`,
    );
    return r.at;
  }

  /**
   * Claims due rollouts (every tenant's, run as the system) FOR UPDATE SKIP LOCKED: another
   * hub's releaser skips them, so each release happens on one hub. `release` gets each rollout
   * with its first queued nodes (up to `perRollout`) while the rows stay locked; what it released
   * is written in the same transaction, a compare-and-set on the node rows still unreleased.
   * A hub that dies before the commit leaves them queued; the next release submits the same
   * idempotency keys and gets the same tasks.
   */
  async claimDue(
    limit: number,
    perRollout: number,
    release: (claimed: { row: RolloutRow; queued: string[] }[]) => Promise<ReleaseOutcome[]>,
  ): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows: RolloutRow[] = await tx.query(
        `SELECT * FROM rollouts WHERE status = 'in_progress' AND queued > 0 AND next_release_at <= now()
         ORDER BY next_release_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) return 0;
      const queued: { rollout_id: string; node_id: string }[] = await tx.query(
        `SELECT q.rollout_id, q.node_id FROM unnest($1::uuid[]) AS r(id)
         CROSS JOIN LATERAL (
           SELECT rollout_id, node_id FROM rollout_nodes
           WHERE rollout_id = r.id AND released_at IS NULL ORDER BY seq LIMIT $2) q`,
        [rows.map((r) => r.id), perRollout],
      );
      const claimed = rows.map((row) => ({
        row,
        queued: queued.filter((q) => q.rollout_id === row.id).map((q) => q.node_id),
      }));
      const outcomes = await release(claimed);
      const released = outcomes.flatMap((o) => o.released.map((r) => ({ rollout_id: o.id, ...r })));
      const marked: { rollout_id: string }[] = await tx.query(
        `WITH m AS (
           UPDATE rollout_nodes rn SET task_id = o.task_id, error = o.error, released_at = now()
           FROM jsonb_to_recordset($1::jsonb) AS o(rollout_id uuid, node_id text, task_id uuid, error text)
           WHERE rn.rollout_id = o.rollout_id AND rn.node_id = o.node_id AND rn.released_at IS NULL
           RETURNING rn.rollout_id)
         SELECT rollout_id FROM m`,
        [JSON.stringify(released)],
      );
      await tx.query(
        `UPDATE rollouts r SET next_release_at = o.next_release_at, updated_at = now(),
                queued = r.queued - (SELECT count(*) FROM unnest($2::uuid[]) AS m(id) WHERE m.id = r.id),
                released = r.released + (SELECT count(*) FROM unnest($2::uuid[]) AS m(id) WHERE m.id = r.id)
         FROM jsonb_to_recordset($1::jsonb) AS o(id uuid, next_release_at timestamptz)
         WHERE r.id = o.id`,
        [
          JSON.stringify(outcomes.map((o) => ({ id: o.id, next_release_at: o.next_release_at }))),
          marked.map((m) => m.rollout_id),
        ],
      );
      return rows.length;
    });
  }

  /**
   * Locks an in-progress rollout (waiting for a release in progress), counts its nodes' outcomes
   * and applies what `decide` says, with the counts, in one transaction. Ending it answers the
   * tasks still open, for the caller to cancel after the commit. Undefined: not in progress.
   */
  async evaluate(
    id: string,
    decide: (row: RolloutRow, counts: RolloutCounts) => RolloutChange,
  ): Promise<EvaluationOutcome | undefined> {
    return this.db.transaction(async (tx) => {
      const [row]: RolloutRow[] = await tx.query(
        `SELECT * FROM rollouts WHERE id = $1 AND status = 'in_progress' FOR UPDATE`,
        [id],
      );
      if (!row) return undefined;
      const counts = await this.countsIn(tx, id);
      const change = decide(row, counts);
      const [updated]: RolloutRow[] = await tx.query(
        `WITH u AS (
           UPDATE rollouts SET counts = $2::jsonb, status = COALESCE($3, status), reason = COALESCE($4, reason),
                  next_release_at = COALESCE($5, next_release_at), updated_at = now(),
                  finished_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END
           WHERE id = $1 RETURNING *)
         SELECT * FROM u`,
        [id, JSON.stringify(counts), change.status ?? null, change.reason ?? null, change.next_release_at ?? null],
      );
      if (!change.status) return { row: updated, counts };
      const open: { task_id: string }[] = await tx.query(
        `SELECT rn.task_id FROM rollout_nodes rn JOIN tasks t ON t.id = rn.task_id
         WHERE rn.rollout_id = $1 AND t.status IN ('pending', 'dispatched', 'running')`,
        [id],
      );
      return { row: updated, counts, ended: { status: change.status, open: open.map((o) => o.task_id) } };
    });
  }

  /**
   * Queues a node that came online for every in-progress rollout of its tenant that takes future
   * nodes and whose target tags it has (once: a node already targeted is skipped). Answers the
   * rollouts it joined. A rollout that had nothing queued was idle: its schedule starts from now
   * (tokens do not pile up while there is nothing to release).
   */
  async enqueueNode(nodeId: string): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(
      `WITH ins AS (
         INSERT INTO rollout_nodes (rollout_id, node_id, tenant_id)
         SELECT r.id, n.id, r.tenant_id FROM nodes n
         JOIN rollouts r ON r.tenant_id = n.tenant_id AND r.status = 'in_progress' AND r.include_future_nodes
         WHERE n.id = $1 AND n.kind <> 'worker' AND cardinality(r.target_tags) > 0 AND n.tags @> r.target_tags
         ON CONFLICT DO NOTHING
         RETURNING rollout_id)
       , u AS (UPDATE rollouts r SET queued = r.queued + 1, updated_at = now(),
                 next_release_at = CASE WHEN r.queued = 0 THEN GREATEST(r.next_release_at, now())
                                        ELSE r.next_release_at END
               FROM ins
               WHERE r.id = ins.rollout_id RETURNING r.id)
       SELECT id FROM u`,
      [nodeId],
    );
    return rows.map((r) => r.id);
  }
}
