/**
 * What the LLM gateway asks of accounting (quotas per API key, and usage rows), as abstract
 * classes used as Nest tokens: the gateway injects these; LlmAccountingModule binds the
 * PostgreSQL implementations. Keeping the contract here lets the two sides change apart.
 */

/** Who is calling: the API key (null with auth off) and, for `llm_request`, the node. */
export interface LlmCaller {
  keyId: string | null;
  nodeId?: string;
  source: 'http' | 'node';
}

/** Tokens a call used, as the upstream reported them (or as estimated when it did not). */
export interface LlmTokens {
  prompt_tokens: number;
  completion_tokens: number;
}

/** A reservation taken before an upstream call; settled exactly once after it. */
export interface LlmReservation {
  /**
   * Replaces the estimate with what was used (null: nothing was used, e.g. the upstream
   * refused before generating) and releases the parallel slot.
   */
  settle(used: LlmTokens | null): Promise<void>;
}

export abstract class LlmQuotaGate {
  /**
   * Atomically reserves one request and `estimatedTokens` against the key's limits (rpm,
   * tpm, max_parallel, token budget) and checks the model is allowed for it. Throws an
   * LlmError: 403 `model_not_allowed`, 429 `rate_limit_exceeded` with retryAfterSeconds, or
   * 429 `insufficient_quota` with shouldRetry false. Keys without limits pass at no cost.
   */
  abstract reserve(caller: LlmCaller, model: string, estimatedTokens: number): Promise<LlmReservation>;
}

export type LlmCallStatus = 'completed' | 'failed' | 'interrupted' | 'client_closed' | 'timeout';

/** One upstream call (a gateway request that tried two deployments is two rows). */
export interface LlmUsageRecord {
  request_id: string;
  key_id: string | null;
  node_id: string | null;
  /** The model the client asked for (alias included) and the one the deployment served. */
  requested_model: string;
  model: string;
  provider: string;
  status: LlmCallStatus;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  /** Time to the first content byte from the upstream, ms (null when none came). */
  ttft_ms: number | null;
  duration_ms: number;
  /** HTTP status the upstream answered, when it answered. */
  upstream_status: number | null;
  error: string | null;
  started_at: Date;
}

export abstract class LlmUsageRecorder {
  /** Records a finished call; never throws and never delays the caller (batched writes). */
  abstract record(row: LlmUsageRecord): void;
  /** A deployment was cooled down (for metrics). */
  abstract cooledDown(provider: string, model: string, reason: string): void;
}
