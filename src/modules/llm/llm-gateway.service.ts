import { Injectable, Logger } from '@nestjs/common';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import {
  type ChatRequest,
  DEFAULT_COMPLETION_ESTIMATE,
  estimatePromptTokens,
  estimateTextTokens,
  parseChatRequest,
} from './chat-request.js';
import { carriesContent, CompletionBuilder } from './completion-builder.js';
import {
  type LlmCallStatus,
  type LlmCaller,
  LlmQuotaGate,
  type LlmReservation,
  type LlmTokens,
  LlmUsageRecorder,
} from './llm-accounting.js';
import { LlmError } from './llm-error.js';
import { type Deployment, LlmRouter } from './llm-router.js';
import { RunningRequests, type StopReason } from './running-requests.js';
import { postChat, readJson, sseEvents, UpstreamHttpError, UpstreamStreamError } from './upstream.js';
import { describeResponse, endUpstreamSpan, upstreamSpan } from './llm-spans.js';
import { traceparentOf, tracingEnabled } from '../../common/tracing/tracer.js';
import { currentTenantSetting, DEFAULT_TENANT, NO_TENANT, SYSTEM_TENANT } from '../../database/tenant-context.js';
import { DEFAULT_WEIGHT, weightOf } from '../concurrency/fair-share.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { type SlotRefusal, SlotQueue } from './slot-queue.js';

export interface ChatRun {
  requestId: string;
  caller: LlmCaller;
  /** Aborted when the client went away (its reason: 'client_closed'). */
  clientSignal?: AbortSignal;
  /**
   * Streaming: every chunk for the client, in order, exactly as OpenAI sends them. The first
   * call means content reached the client: from then on nothing is retried. A returned promise
   * says the client is behind: nothing more is read from the upstream until it settles
   * (backpressure; the request's own deadline and interrupts still stop the wait).
   */
  onChunk?: (chunk: Record<string, unknown>) => void | Promise<void>;
  /**
   * Set when this call is one of a turn's (the hub runs tools between model calls): the turn
   * registered the request (interrupts), owns its deadline and client signal, and publishes
   * `llm.completed` once. The call stops when this aborts (its reason a StopReason).
   */
  turn?: AbortSignal;
  /** The request this call's usage counts for (a node's `llm_request` while it runs a chat's tool: the chat's); default requestId. */
  usageRequestId?: string;
  /** The W3C context the upstream calls' spans continue (a node's `llm_request` may send its own); default the current call's. */
  traceparent?: string;
}

/** A registered request: its stop signal (interrupt, client gone, deadline), and `done` at its end. */
export interface OpenRequest {
  signal: AbortSignal;
  done: () => void;
}

export interface ChatOutcome {
  /** The chat.completion (rebuilt from the chunks when streamed). */
  completion: Record<string, unknown>;
  usage: LlmTokens;
  model: string;
  provider: string;
}

/** Statuses after which another deployment may do better; others are the request's fault. */
const RETRYABLE_STATUS = new Set([401, 403, 408, 409, 429, 500, 502, 503, 504, 520, 522, 524]);

/** How one upstream attempt ended, for the retry decision and the usage row. */
class AttemptFailure extends Error {
  constructor(
    readonly retryable: boolean,
    readonly status: number | null,
    readonly error: LlmError,
  ) {
    super(error.message);
  }
}

/**
 * The OpenAI-compatible gateway: checks the request, reserves the caller's quota, and walks
 * the router's deployments (then the model's fallbacks) until one answers. It is the only
 * retry loop, and it retries only before the first content reached the client. Interrupts,
 * client disconnects and LLM_MAX_REQUEST_MS abort the upstream call; what was used is
 * charged either way.
 */
@Injectable()
export class LlmGateway {
  private readonly logger = new Logger('LlmGateway');
  /** Requests waiting for a slot of a deployment at max_concurrency. */
  private readonly slots: SlotQueue<Deployment>;

  constructor(
    private readonly router: LlmRouter,
    private readonly quotas: LlmQuotaGate,
    private readonly usage: LlmUsageRecorder,
    private readonly running: RunningRequests,
    private readonly events: EventBus,
    private readonly config: AppConfig,
    private readonly tenants: TenantsService,
  ) {
    this.slots = new SlotQueue<Deployment>(
      {
        acquire: (model) => {
          const [d] = router.order(model);
          if (d) d.inFlight++;
          return d;
        },
        waitable: (chain) => router.waitable(chain),
      },
      () => ({ waitMs: config.LLM_SLOT_WAIT_MS, max: config.LLM_SLOT_QUEUE_MAX }),
    );
    // New settings (a higher max_concurrency, another provider) may have freed slots.
    router.onReload(() => this.slots.pump());
  }

  /** Requests waiting for a slot on this hub (GET /api/v1/llm/status). */
  get waiting(): number {
    return this.slots.size;
  }

  models(): { object: 'list'; data: { id: string; object: 'model'; created: number; owned_by: string }[] } {
    const created = this.router.loadedAt;
    return {
      object: 'list',
      data: this.router.models().map((m) => ({ id: m.id, object: 'model', created, owned_by: m.owned_by })),
    };
  }

  /** Throws LlmError; when `onChunk` was already called, the caller must end its stream in-band. */
  async chat(raw: unknown, run: ChatRun): Promise<ChatOutcome> {
    const request = parseChatRequest(raw);
    const requested = request.model ?? this.router.current.default_model;
    if (!requested) throw LlmError.invalid('model', 'model is required (no default model is configured)');
    const chain = this.router.chain(requested);
    if (chain.length === 0)
      throw new LlmError(
        404,
        'invalid_request_error',
        `The model \`${requested}\` does not exist`,
        'model_not_found',
        'model',
      );
    const estimate = estimatePromptTokens(request.body) + (request.maxTokens ?? DEFAULT_COMPLETION_ESTIMATE);
    const reservation = await this.quotas.reserve(run.caller, requested, estimate);
    const open = run.turn ? { signal: run.turn, done: () => undefined } : this.open(run, requested);
    const state = { delivered: false, used: null as LlmTokens | null };
    try {
      const outcome = await this.walk(request, requested, chain, run, open.signal, state);
      state.used = outcome.usage;
      if (!run.turn) this.completed(run, outcome.completion, null);
      return outcome;
    } catch (e) {
      const error = asLlmError(e);
      if (!(e instanceof LlmError)) this.logger.error({ err: e, request_id: run.requestId }, 'gateway request failed');
      if (!run.turn) this.completed(run, null, error);
      throw error;
    } finally {
      open.done();
      void this.settle(reservation, state.used);
    }
  }

  /**
   * Registers a request under its id (for /v1/interrupt, on any hub), with its deadline
   * (LLM_MAX_REQUEST_MS) and the client's going away: the signal aborts with a StopReason.
   */
  open(run: Pick<ChatRun, 'requestId' | 'caller' | 'clientSignal'>, model: string): OpenRequest {
    const stop = this.running.start(run.requestId, { model, keyId: run.caller.keyId, nodeId: run.caller.nodeId });
    const timer = setTimeout(() => stop.stop('timeout'), this.config.LLM_MAX_REQUEST_MS);
    const onClientGone = (): void => stop.stop('client_closed');
    if (run.clientSignal && this.config.LLM_ABORT_ON_DISCONNECT) {
      if (run.clientSignal.aborted) stop.stop('client_closed');
      else run.clientSignal.addEventListener('abort', onClientGone, { once: true });
    }
    return {
      signal: stop.signal,
      done: () => {
        clearTimeout(timer);
        run.clientSignal?.removeEventListener('abort', onClientGone);
        stop.done();
      },
    };
  }

  /** `chat.completed` for /events watchers: the request's whole completion, or its error. */
  completed(
    run: Pick<ChatRun, 'requestId' | 'caller'>,
    completion: Record<string, unknown> | null,
    error: LlmError | null,
  ): void {
    this.events.publish('llm.completed', {
      requestId: run.requestId,
      keyId: run.caller.keyId,
      completion,
      error: error ? error.body().error : null,
    });
  }

  /** The error a request that stopped for `reason` answers with. */
  stopped(reason: StopReason): LlmError {
    if (reason === 'timeout')
      return new LlmError(
        504,
        'timeout_error',
        `The request ran longer than ${this.config.LLM_MAX_REQUEST_MS} ms`,
        'request_timeout',
      );
    const message = reason === 'interrupted' ? 'The request was interrupted' : 'The client closed the connection';
    return new LlmError(499, 'request_aborted', message, reason);
  }

  private async settle(reservation: LlmReservation, used: LlmTokens | null): Promise<void> {
    await reservation
      .settle(used)
      .catch((e: unknown) => this.logger.warn({ err: e }, 'could not settle an LLM reservation'));
  }

  /**
   * The deployments of each model of the chain in turn, until one answers. When none can take
   * a call only because all are at max_concurrency, waits for a slot (LLM_SLOT_WAIT_MS), handed
   * out fairly between tenants (SlotQueue).
   */
  private async walk(
    request: ChatRequest,
    requested: string,
    chain: string[],
    run: ChatRun,
    signal: AbortSignal,
    state: { delivered: boolean; used: LlmTokens | null },
  ): Promise<ChatOutcome> {
    // Fairness only matters where slots are bounded: elsewhere no tenant is looked up.
    const limited = this.router.limited(chain);
    const tenant = limited ? fairnessTenant() : DEFAULT_TENANT;
    const weight = limited ? await this.weightOf(tenant) : DEFAULT_WEIGHT;
    // Waiters first: a slot freed some other way (new settings) is theirs, not this newcomer's.
    this.slots.pump();
    const tried = new Set<Deployment>();
    const next = (): Deployment | undefined => {
      for (const model of chain) for (const d of this.router.order(model)) if (!tried.has(d)) return d;
      return undefined;
    };
    let d = next();
    let held = false;
    if (!d) {
      if (!this.router.waitable(chain)) throw this.unavailable(requested, chain, 'cooling');
      const waited = await this.slots.wait(tenant, weight, chain, signal);
      if ('refused' in waited) {
        if (waited.refused === 'aborted') throw this.stopped(signal.reason as StopReason);
        throw this.unavailable(requested, chain, waited.refused);
      }
      d = waited.slot;
      held = true;
      if (signal.aborted) {
        this.release(d);
        throw this.stopped(signal.reason as StopReason);
      }
    }
    let last: AttemptFailure | undefined;
    for (; d; d = next(), held = false) {
      tried.add(d);
      if (!held && d.provider.max_concurrency !== undefined) this.slots.charge(tenant, d.model, weight);
      try {
        return await this.attempt(d, held, request, requested, run, signal, state);
      } catch (e) {
        if (!(e instanceof AttemptFailure)) throw e;
        last = e;
        if (!e.retryable || state.delivered || signal.aborted) throw e.error;
      }
    }
    // Every deployment tried failed before content: the last failure speaks.
    throw (last as AttemptFailure).error;
  }

  /** 503 `no_available_deployment`, with a retry-after of the soonest cooldown's end (at least 1 s). */
  private unavailable(requested: string, chain: string[], why: SlotRefusal | 'cooling'): LlmError {
    const wait = this.router.nextAvailableInMs(chain);
    const reason =
      why === 'timeout'
        ? `none freed a slot within LLM_SLOT_WAIT_MS (${this.config.LLM_SLOT_WAIT_MS} ms)`
        : why === 'full'
          ? `LLM_SLOT_QUEUE_MAX (${this.config.LLM_SLOT_QUEUE_MAX}) requests are waiting already`
          : 'all cooling down or at capacity';
    return new LlmError(
      503,
      'server_error',
      `No deployment of ${requested} can take a call now (${reason})`,
      'no_available_deployment',
      null,
      {
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
        shouldRetry: true,
      },
    );
  }

  /** A call's slot is free again: the next waiter due gets it at once. */
  private release(d: Deployment): void {
    d.inFlight--;
    this.slots.pump();
  }

  /** A tenant's share of the slots (its `limits.weight`); the default when its limits cannot be read. */
  private async weightOf(tenant: string): Promise<number> {
    try {
      return weightOf(await this.tenants.limitsOf(tenant));
    } catch (e) {
      this.logger.warn({ err: e, tenant }, 'could not read tenant limits for the gateway slots; weight 1');
      return DEFAULT_WEIGHT;
    }
  }

  /**
   * One upstream call. Throws AttemptFailure (with whether another deployment may be tried).
   * `held`: the call's slot was taken for it already (handed over by the slot queue).
   */
  private async attempt(
    d: Deployment,
    held: boolean,
    request: ChatRequest,
    requested: string,
    run: ChatRun,
    signal: AbortSignal,
    state: { delivered: boolean; used: LlmTokens | null },
  ): Promise<ChatOutcome> {
    const started = Date.now();
    const deploymentTimeout = d.provider.timeout_ms ? AbortSignal.timeout(d.provider.timeout_ms) : undefined;
    const upstreamSignal = deploymentTimeout ? AbortSignal.any([signal, deploymentTimeout]) : signal;
    const body: Record<string, unknown> = { ...request.body, model: d.model };
    // Always ask for usage: it settles the reservation; the client sees the usage chunk only if it asked.
    if (request.stream)
      body.stream_options = { ...((request.body.stream_options as object | undefined) ?? {}), include_usage: true };
    const builder = new CompletionBuilder();
    let ttft: number | null = null;
    let upstreamStatus: number | null = null;
    // Waiting for the client to take what it was sent (a stop or the deployment's timeout ends the wait).
    let waitingOnClient = false;
    const pace = async (chunk: Record<string, unknown>): Promise<void> => {
      const behind = this.deliver(run, chunk);
      // Only a promise asks to wait (a `void` callback may still return whatever its last call did).
      if (!(behind instanceof Promise)) return;
      waitingOnClient = true;
      await untilSettledOrAborted(behind, upstreamSignal);
      upstreamSignal.throwIfAborted();
      waitingOnClient = false;
    };
    if (!held) d.inFlight++;
    const span = tracingEnabled() ? upstreamSpan(d, request, requested, run, started) : undefined;
    const record = (status: LlmCallStatus, error: string | null, tokens: LlmTokens): void => {
      if (span) endUpstreamSpan(span, status, error, tokens, ttft, upstreamStatus);
      this.usage.record({
        request_id: run.usageRequestId ?? run.requestId,
        key_id: run.caller.keyId,
        node_id: run.caller.nodeId ?? null,
        requested_model: requested,
        model: d.model,
        provider: d.provider.name,
        status,
        stream: request.stream,
        prompt_tokens: tokens.prompt_tokens,
        completion_tokens: tokens.completion_tokens,
        ttft_ms: ttft,
        duration_ms: Date.now() - started,
        upstream_status: upstreamStatus,
        error,
        started_at: new Date(started),
      });
    };
    try {
      const res = await postChat(d.provider, body, upstreamSignal, span && traceparentOf(span));
      upstreamStatus = res.statusCode ?? null;
      let completion: Record<string, unknown>;
      if (!request.stream) {
        completion = await readJson(res);
        ttft = Date.now() - started;
      } else {
        const held: Record<string, unknown>[] = [];
        for await (const chunk of sseEvents(res)) {
          builder.add(chunk);
          const isUsageChunk = Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage;
          if (isUsageChunk && !request.includeUsage) continue;
          if (!state.delivered && !carriesContent(chunk)) {
            held.push(chunk); // the role chunk waits for content, so a failure before it can still go elsewhere
            continue;
          }
          if (!state.delivered) {
            ttft = Date.now() - started;
            state.delivered = true;
            for (const h of held.splice(0)) await pace(h);
          }
          await pace(chunk);
        }
        if (!state.delivered) {
          // An empty answer: what was held is all there is.
          state.delivered = held.length > 0;
          for (const h of held.splice(0)) await pace(h);
        }
        completion = builder.build();
      }
      const usage = usageOf(completion, request, builder);
      describeResponse(span, completion);
      this.router.report(d, true, upstreamStatus);
      record('completed', null, usage);
      return { completion, usage, model: d.model, provider: d.provider.name };
    } catch (e) {
      const failure = this.classify(e, signal, deploymentTimeout, state.delivered, d);
      upstreamStatus = e instanceof UpstreamHttpError ? e.status : upstreamStatus;
      const stopped = signal.aborted ? (signal.reason as StopReason) : null;
      // Interrupts and disconnects are not the deployment's fault, nor a client that stopped reading.
      if (!stopped && !waitingOnClient) this.router.report(d, false, upstreamStatus);
      const partial = {
        prompt_tokens: estimatePromptTokens(request.body),
        completion_tokens: Math.ceil(builder.chars / 4),
      };
      if (state.delivered || stopped)
        state.used = builder.usage
          ? { prompt_tokens: builder.usage.prompt_tokens, completion_tokens: builder.usage.completion_tokens }
          : partial;
      record(
        stopped ?? (failure.status === 504 ? 'timeout' : 'failed'),
        failure.error.message,
        state.used ?? { prompt_tokens: 0, completion_tokens: 0 },
      );
      throw failure;
    } finally {
      this.release(d);
    }
  }

  /** One chunk to the client (and to /events watchers); a promise when the client is behind (see ChatRun.onChunk). */
  private deliver(run: ChatRun, chunk: Record<string, unknown>): void | Promise<void> {
    const behind = run.onChunk?.(chunk);
    this.events.publish('llm.chunk', { requestId: run.requestId, keyId: run.caller.keyId, chunk });
    return behind;
  }

  private classify(
    e: unknown,
    signal: AbortSignal,
    deploymentTimeout: AbortSignal | undefined,
    delivered: boolean,
    d: Deployment,
  ): AttemptFailure {
    if (signal.aborted) {
      const error = this.stopped(signal.reason as StopReason);
      return new AttemptFailure(false, error.status, error);
    }
    if (deploymentTimeout?.aborted) {
      return new AttemptFailure(
        !delivered,
        504,
        new LlmError(
          504,
          'timeout_error',
          `${d.provider.name} did not answer within ${d.provider.timeout_ms} ms`,
          'upstream_timeout',
        ),
      );
    }
    if (e instanceof UpstreamHttpError) {
      const retryAfter = e.retryAfter !== null && /^\d+$/.test(e.retryAfter) ? Number(e.retryAfter) : undefined;
      if (e.status === 429) {
        return new AttemptFailure(
          true,
          429,
          new LlmError(
            429,
            'rate_limit_error',
            `${d.provider.name}: ${e.upstreamMessage}`,
            'upstream_rate_limited',
            null,
            { retryAfterSeconds: retryAfter ?? 1, shouldRetry: true },
          ),
        );
      }
      if (RETRYABLE_STATUS.has(e.status)) {
        const status =
          e.status === 401 || e.status === 403
            ? 502
            : e.status === 504 || e.status === 408
              ? 504
              : e.status === 503
                ? 503
                : 502;
        return new AttemptFailure(
          true,
          e.status,
          new LlmError(
            status,
            'server_error',
            `${d.provider.name} answered ${e.status}: ${e.upstreamMessage}`,
            'upstream_error',
          ),
        );
      }
      // The request itself was refused (400, 404, 413, 422): another deployment would refuse it too.
      return new AttemptFailure(
        false,
        e.status,
        new LlmError(e.status, 'invalid_request_error', e.upstreamMessage, 'upstream_rejected'),
      );
    }
    if (e instanceof UpstreamStreamError) {
      return new AttemptFailure(
        !delivered,
        502,
        new LlmError(502, 'server_error', `${d.provider.name}: ${e.message}`, 'upstream_stream_error'),
      );
    }
    // Connection refused or reset, a cut stream, unreadable JSON.
    const message = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    return new AttemptFailure(
      !delivered,
      502,
      new LlmError(502, 'server_error', `${d.provider.name}: ${message}`, 'upstream_unreachable'),
    );
  }
}

/**
 * Whose share of the slots a request uses: the tenant it acts for. A global admin key (or auth
 * off) acts as the system, `*`, whose rows go to `default`: it shares `default`'s turns.
 */
function fairnessTenant(): string {
  const setting = currentTenantSetting();
  return setting === SYSTEM_TENANT || setting === NO_TENANT ? DEFAULT_TENANT : setting;
}

export const asLlmError = (e: unknown): LlmError =>
  e instanceof LlmError ? e : new LlmError(500, 'server_error', 'The gateway failed', 'internal_error');

/** Waits for `p`, or less: until `signal` aborts. */
function untilSettledOrAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void p.then(done, done);
  });
}

/** What the call used: the upstream's numbers, or an estimate when it gave none. */
function usageOf(completion: Record<string, unknown>, request: ChatRequest, builder: CompletionBuilder): LlmTokens {
  const u = completion.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
  if (u && typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number')
    return { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens };
  const text = ((completion.choices as { message?: { content?: unknown } }[] | undefined) ?? [])
    .map((c) => (typeof c.message?.content === 'string' ? c.message.content : ''))
    .join('');
  return {
    prompt_tokens: estimatePromptTokens(request.body),
    completion_tokens: Math.max(estimateTextTokens(text), Math.ceil(builder.chars / 4)),
  };
}
