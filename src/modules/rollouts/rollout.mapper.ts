import type { RolloutNodeView, RolloutView } from './dto/rollout.dto.js';
import { EMPTY_COUNTS, releasesPerMinute } from './rollout-policy.js';
import type { RolloutCounts, RolloutNodeRow, RolloutRow } from './rollout.types.js';

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/** A rollout as answered, with its live counts (else as last evaluated). */
export function mapRollout(r: RolloutRow, counts?: RolloutCounts, nodes?: RolloutNodeRow[]): RolloutView {
  const c: RolloutCounts = { ...EMPTY_COUNTS, ...r.counts, ...counts };
  // A list's cached counts may predate the last release: the row's own queue count is exact.
  if (!counts) c.queued = r.queued;
  const ended = r.status !== 'in_progress';
  return {
    rollout_id: r.id,
    id: r.id,
    name: r.name,
    status: r.status,
    task: r.task,
    target: { tags: r.target_tags, node_ids: r.target_node_ids },
    rate: r.rate,
    abort: r.abort,
    include_future_nodes: r.include_future_nodes,
    total: r.queued + r.released,
    released: r.released,
    current_per_minute: releasesPerMinute(r.rate, c.completed),
    counts: c,
    reason: r.reason,
    created_at: new Date(r.created_at).toISOString(),
    finished_at: iso(r.finished_at),
    ...(nodes ? { nodes: nodes.map((n) => mapRolloutNode(n, ended)) } : {}),
  };
}

function mapRolloutNode(n: RolloutNodeRow, ended: boolean): RolloutNodeView {
  const status = n.error ? 'rejected' : n.released_at ? (n.task_status ?? 'unknown') : ended ? 'cancelled' : 'queued';
  return {
    node_id: n.node_id,
    status,
    task_id: n.task_id,
    released_at: iso(n.released_at),
    error: n.error,
  };
}
