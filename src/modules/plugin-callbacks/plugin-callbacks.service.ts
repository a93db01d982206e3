import type { IncomingHttpHeaders } from 'node:http';
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { EventBus } from '../../common/events/event-bus.js';
import { AppConfig } from '../../config/app-config.js';
import { hashKey } from '../auth/api-keys.service.js';
import { bearerToken } from '../auth/auth.guard.js';
import { createRateLimitStore, type RateLimitStore } from '../rate-limit/rate-limit.store.js';
import type { DeliveryClaim } from '../tasks/task-transitions.repository.js';
import type { PluginOutcome } from '../tasks/task.types.js';
import { TaskHoldersService } from '../tasks/task-holders.service.js';
import { PluginDeliveriesRepository } from './plugin-deliveries.repository.js';
import { PLUGIN_NAME_PATTERN } from './plugin.types.js';
import { PluginsService } from './plugins.service.js';
import { sameDigest, verifySignature } from './webhook-signature.js';

const RATE_WINDOW_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One inbound callback as the HTTP layer saw it. */
export interface CallbackRequest {
  plugin: string;
  taskId: string;
  headers: IncomingHttpHeaders;
  /** The body bytes as received: what the signature covers. */
  rawBody: Buffer;
  ip: string;
}

/** What an admitted callback carries on: its plugin (as registered) and its delivery id (absent for a bearer call without one). */
export interface AdmittedCallback {
  plugin: string;
  webhookId?: string;
}

export interface CallbackAnswer {
  task_id: string;
  status: string;
  duplicate?: true;
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(' ') : v;
};

/**
 * `POST /plugin-callback/:plugin/:taskId`: rate limit per plugin and address, then Standard
 * Webhooks signature (or the plugin's bearer token), then the body, then the task transition
 * with its delivery recorded in the same transaction. Refusals raise a `hub.alert`.
 */
@Injectable()
export class PluginCallbacksService implements OnApplicationShutdown {
  private readonly limiter: RateLimitStore;

  constructor(
    private readonly config: AppConfig,
    private readonly plugins: PluginsService,
    private readonly holders: TaskHoldersService,
    private readonly deliveries: PluginDeliveriesRepository,
    private readonly events: EventBus,
  ) {
    this.limiter = createRateLimitStore(config.REDIS_URL);
  }

  /** The rate limit: RATE_LIMITED (with retry_after_seconds) past PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE. */
  async limit(plugin: string, ip: string): Promise<void> {
    const limit = this.config.PLUGIN_CALLBACK_RATE_LIMIT_PER_MINUTE; // read per call: the setting is hot
    // Names are case-insensitive: `FileOrganizer` and `fileorganizer` share one budget.
    const key = `plugin-callback:${plugin.toLowerCase()}:${ip}`;
    const { count, resetInMs } = await this.limiter.hit(key, RATE_WINDOW_MS);
    if (count <= limit) return;
    const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
    throw new AppError(
      ErrorCode.RATE_LIMITED,
      `Plugin callbacks are limited to ${limit} per minute per plugin and address`,
      {
        retry_after_seconds: retryAfter,
      },
    );
  }

  /** Authenticates the callback; UNAUTHORIZED (and an alert) when it is not from that plugin. */
  async authenticate(req: CallbackRequest): Promise<AdmittedCallback> {
    const { plugin, headers } = req;
    const webhookId = header(headers, 'webhook-id');
    const timestamp = header(headers, 'webhook-timestamp');
    const signature = header(headers, 'webhook-signature');
    const token = bearerToken(header(headers, 'authorization'));
    const creds = PLUGIN_NAME_PATTERN.test(plugin) ? await this.plugins.credentials(plugin) : undefined;
    // An unknown plugin is checked as a known one that no credential matches, so the refusal a
    // caller reads is the same either way and never tells which names exist (docs/security.md);
    // only the alert says why.
    const { secrets, tokenHashes } = creds ?? { secrets: [], tokenHashes: [] };
    let problem: string | undefined;
    if (signature !== undefined || (token === undefined && (webhookId !== undefined || timestamp !== undefined))) {
      problem = verifySignature({ id: webhookId, timestamp, signature }, req.rawBody, secrets);
    } else if (token !== undefined) {
      const hash = hashKey(token);
      if (!tokenHashes.some((h) => sameDigest(h, hash))) problem = 'invalid token';
    } else problem = 'missing credentials';
    if (problem) {
      this.events.publish('hub.alert', {
        severity: 'warning',
        source: 'plugin',
        plugin,
        task_id: req.taskId,
        message: `plugin callback refused: ${creds ? problem : 'unknown plugin'}`,
        source_ip: req.ip,
      });
      throw new AppError(ErrorCode.UNAUTHORIZED, `Plugin callback refused: ${problem}`);
    }
    if (webhookId !== undefined && (webhookId.length < 1 || webhookId.length > 256))
      throw AppError.validation('webhook-id', 'must be 1 to 256 characters');
    // Admitted means a credential matched, so the plugin exists: carry on with its registered name.
    return { plugin: creds?.name ?? plugin, webhookId };
  }

  /**
   * Applies an admitted callback to its task (once per webhook-id). `attemptHeader` is
   * `X-Taskhub-Attempt`, for plugins that cannot add a body field (the body's `attempt` is the
   * one a signature covers).
   */
  async apply(
    admitted: AdmittedCallback,
    taskId: string,
    body: unknown,
    attemptHeader?: string,
  ): Promise<CallbackAnswer> {
    const outcome = parseOutcome(body);
    const attempt = parseAttempt(body, attemptHeader);
    if (!UUID.test(taskId)) throw AppError.notFound('Task', taskId);
    const { plugin, webhookId } = admitted;
    const claim: DeliveryClaim | undefined =
      webhookId === undefined ? undefined : (tx) => this.deliveries.record(tx, plugin, webhookId, taskId);
    const { row, duplicate } = await this.holders.settleFromPlugin(taskId, plugin, outcome, claim, attempt);
    return duplicate
      ? { task_id: row.id, status: row.status, duplicate: true }
      : { task_id: row.id, status: row.status };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.limiter.close();
  }
}

/** The attempt a callback is for (body `attempt`, or the header): undefined means the current one. */
function parseAttempt(body: unknown, header: string | undefined): number | undefined {
  const inBody = (body as { attempt?: unknown }).attempt;
  if (inBody !== undefined && (typeof inBody !== 'number' || !Number.isSafeInteger(inBody) || inBody < 1))
    throw AppError.validation('attempt', 'attempt must be a positive integer');
  if (header !== undefined && !/^[1-9]\d{0,9}$/.test(header.trim()))
    throw AppError.validation('x-taskhub-attempt', 'X-Taskhub-Attempt must be a positive integer');
  const fromHeader = header === undefined ? undefined : Number(header.trim());
  if (inBody !== undefined && fromHeader !== undefined && inBody !== fromHeader)
    throw AppError.validation('attempt', 'attempt and X-Taskhub-Attempt disagree');
  return inBody ?? fromHeader;
}

/** Seed 001 §7.4 body: `{status: "success"|"failed", output?, result?, error?, attempt?}`. */
function parseOutcome(body: unknown): PluginOutcome {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw AppError.validation('body', 'must be a JSON object');
  const b = body as { status?: unknown; output?: unknown; result?: unknown; error?: unknown };
  if (b.status !== 'success' && b.status !== 'failed')
    throw AppError.validation('status', 'status must be "success" or "failed"');
  const e = b.error;
  if (e !== undefined && e !== null && typeof e !== 'string' && (typeof e !== 'object' || Array.isArray(e))) {
    throw AppError.validation('error', 'error must be a string or an object');
  }
  if (b.status === 'success') return { status: 'success', result: b.output ?? b.result ?? null };
  const obj = e !== null && typeof e === 'object' ? (e as Record<string, unknown>) : undefined;
  const message =
    typeof e === 'string' ? e : typeof obj?.message === 'string' ? obj.message : 'The plugin reported a failure';
  return {
    status: 'failed',
    error: { message, ...(obj ? { details: obj } : {}), ...(b.result !== undefined ? { result: b.result } : {}) },
  };
}
