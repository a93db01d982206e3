/** What a rollout is doing: AWS IoT Jobs' IN_PROGRESS, COMPLETED, and CANCELED (split by who ended it). */
export const ROLLOUT_STATUSES = ['in_progress', 'completed', 'aborted', 'cancelled'] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];

/** Which finished executions an abort rule counts (IoT Jobs' failureType without REJECTED: see docs). */
export const FAILURE_TYPES = ['failed', 'timed_out', 'all'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** The task each targeted node gets (a subset of POST /api/v1/tasks). */
export interface RolloutTask {
  type: string;
  data?: Record<string, unknown>;
  prompt?: string;
  timeout_seconds?: number;
  max_retries?: number;
}

export interface ExponentialRate {
  base_per_minute: number;
  factor: number;
  after_succeeded: number;
}

/** IoT Jobs' jobExecutionsRolloutConfig: maximumPerMinute and exponentialRate. */
export interface RolloutRate {
  per_minute: number;
  exponential?: ExponentialRate;
}

/** IoT Jobs' abortConfig criterion (its only action is CANCEL). */
export interface AbortRule {
  failure_type: FailureType;
  threshold_percent: number;
  min_executed: number;
}

/** Executions by outcome: the task states, `queued` (not released) and `rejected` (intake refused the task). */
export interface RolloutCounts {
  queued: number;
  pending: number;
  dispatched: number;
  running: number;
  completed: number;
  failed: number;
  timed_out: number;
  cancelled: number;
  rejected: number;
}

/** A row of `rollouts`. */
export interface RolloutRow {
  id: string;
  tenant_id: string;
  name: string;
  task: RolloutTask;
  target_tags: string[];
  target_node_ids: string[];
  rate: RolloutRate | null;
  abort: AbortRule[];
  include_future_nodes: boolean;
  status: RolloutStatus;
  queued: number;
  released: number;
  next_release_at: Date;
  counts: Partial<RolloutCounts>;
  reason: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** A targeted node and its task's state (null: not released, or refused: see `error`). */
export interface RolloutNodeRow {
  node_id: string;
  task_id: string | null;
  released_at: Date | null;
  error: string | null;
  task_status: string | null;
}

/** The columns a create writes. */
export interface RolloutInput {
  name: string;
  task: RolloutTask;
  target_tags: string[];
  target_node_ids: string[];
  rate: RolloutRate | null;
  abort: AbortRule[];
  include_future_nodes: boolean;
}

/** The end of one release round for a claimed rollout, written back in the claim's transaction. */
export interface ReleaseOutcome {
  id: string;
  next_release_at: Date;
  released: { node_id: string; task_id: string | null; error: string | null }[];
}
