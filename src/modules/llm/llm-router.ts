import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { RuntimeConfigService } from '../runtime-config/runtime-config.service.js';
import { LlmUsageRecorder } from './llm-accounting.js';
import { type LlmProvider, type LlmSettings, parseLlmSettings } from './llm-settings.js';

/** One provider serving one model: what the router picks, cools down and counts. */
export interface Deployment {
  readonly key: string;
  readonly provider: LlmProvider;
  readonly model: string;
  inFlight: number;
  cooldownUntil: number;
  /** Outcomes of the last minute, oldest first. */
  outcomes: { at: number; ok: boolean }[];
}

const WINDOW_MS = 60_000;
/** "Keeps failing": more than half of at least this many calls in the last minute. */
const MIN_CALLS_FOR_COOLDOWN = 3;

/**
 * Which deployments serve a model, in the order to try them (weighted random, or fewest
 * calls in flight), skipping those cooling down or full. The gateway's retry loop walks
 * this order; nothing else retries. Settings come from LLM_* (hot: PUT /v1/config/llm).
 */
@Injectable()
export class LlmRouter implements OnModuleInit {
  private readonly logger = new Logger('LlmRouter');
  private settings: LlmSettings = { providers: [], aliases: {}, fallbacks: {} };
  private byModel = new Map<string, Deployment[]>();
  private readonly state = new Map<string, Deployment>();
  /** When the settings were loaded: `created` of /v1/models. */
  loadedAt = Math.floor(Date.now() / 1000);
  /** Called after each reload (new settings may have freed slots). */
  private readonly reloaded: (() => void)[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly runtime: RuntimeConfigService,
    private readonly usage: LlmUsageRecorder,
  ) {}

  onModuleInit(): void {
    this.reload();
    this.runtime.onChange(['LLM_PROVIDERS', 'LLM_ALIASES', 'LLM_FALLBACKS', 'LLM_DEFAULT_MODEL'], () => this.reload());
  }

  /** Rebuilds the model → deployments map; a deployment that stays keeps its counters. */
  reload(): void {
    const parsed = parseLlmSettings({
      providers: this.config.LLM_PROVIDERS,
      aliases: this.config.LLM_ALIASES,
      fallbacks: this.config.LLM_FALLBACKS,
      default_model: this.config.LLM_DEFAULT_MODEL,
    });
    if (!parsed.ok) {
      // Each setting was validated alone; together they may disagree (an alias of a removed model).
      this.logger.error(`LLM settings refused (${parsed.field}: ${parsed.message}); keeping the previous ones`);
      return;
    }
    this.settings = parsed.value;
    const byModel = new Map<string, Deployment[]>();
    for (const provider of parsed.value.providers) {
      for (const model of provider.models) {
        const key = `${provider.name}|${model}`;
        const kept = this.state.get(key);
        const d: Deployment = kept
          ? Object.assign(kept, { provider })
          : { key, provider, model, inFlight: 0, cooldownUntil: 0, outcomes: [] };
        this.state.set(key, d);
        byModel.set(model, [...(byModel.get(model) ?? []), d]);
      }
    }
    for (const key of [...this.state.keys()])
      if (!byModel.get(key.slice(key.indexOf('|') + 1))?.some((d) => d.key === key)) this.state.delete(key);
    this.byModel = byModel;
    this.loadedAt = Math.floor(Date.now() / 1000);
    for (const listener of this.reloaded) listener();
  }

  /** Runs `listener` after every reload of the settings. */
  onReload(listener: () => void): void {
    this.reloaded.push(listener);
  }

  get current(): LlmSettings {
    return this.settings;
  }

  /** The served model a client's name means (alias resolved), or undefined when none serves it. */
  resolve(name: string): string | undefined {
    const target = this.settings.aliases[name] ?? name;
    return this.byModel.has(target) ? target : undefined;
  }

  /** The models to try for a request, in order: the model itself, then its fallbacks. */
  chain(requested: string): string[] {
    const first = this.resolve(requested);
    const fallbacks = this.settings.fallbacks[requested] ?? (first ? this.settings.fallbacks[first] : undefined) ?? [];
    const chain = [first, ...fallbacks.map((f) => this.resolve(f))].filter((m): m is string => m !== undefined);
    return [...new Set(chain)];
  }

  /** Every model and alias, for /v1/models. */
  models(): { id: string; owned_by: string }[] {
    const out = [...this.byModel.entries()].map(([id, ds]) => ({ id, owned_by: ds[0].provider.name }));
    for (const alias of Object.keys(this.settings.aliases))
      if (!this.byModel.has(alias)) out.push({ id: alias, owned_by: 'taskhub' });
    return out;
  }

  /** Every deployment with its live counters (GET /api/v1/llm/status). */
  deployments(): readonly Deployment[] {
    return [...this.state.values()];
  }

  /** Deployments of a served model that can take a call now, in the order to try them. */
  order(model: string): Deployment[] {
    const now = Date.now();
    const open = (this.byModel.get(model) ?? []).filter(
      (d) =>
        d.cooldownUntil <= now && (d.provider.max_concurrency === undefined || d.inFlight < d.provider.max_concurrency),
    );
    if (open.length <= 1) return open;
    if (this.config.LLM_ROUTING_STRATEGY === 'least-busy') {
      return open
        .map((d) => ({ d, r: Math.random() }))
        .sort((a, b) => a.d.inFlight - b.d.inFlight || a.r - b.r)
        .map((x) => x.d);
    }
    // Weighted random order without replacement (Efraimidis–Spirakis keys).
    return open
      .map((d) => ({ d, k: d.provider.weight > 0 ? Math.log(Math.random()) / d.provider.weight : -Infinity }))
      .sort((a, b) => b.k - a.k)
      .map((x) => x.d);
  }

  /** Whether a deployment of these models is not cooling down: when none can take a call, they are all at capacity. */
  waitable(models: readonly string[]): boolean {
    const now = Date.now();
    return models.some((m) => (this.byModel.get(m) ?? []).some((d) => d.cooldownUntil <= now));
  }

  /** Whether a deployment of these models has a max_concurrency (its slots are shared fairly between tenants). */
  limited(models: readonly string[]): boolean {
    return models.some((m) => (this.byModel.get(m) ?? []).some((d) => d.provider.max_concurrency !== undefined));
  }

  /** When the soonest cooling deployment of these models is back, for retry-after (0: none cooling). */
  nextAvailableInMs(models: string[]): number {
    const now = Date.now();
    const waits = models
      .flatMap((m) => this.byModel.get(m) ?? [])
      .map((d) => d.cooldownUntil - now)
      .filter((w) => w > 0);
    return waits.length ? Math.min(...waits) : 0;
  }

  /**
   * The outcome of a call. A 401/403 (the deployment's own credentials) cools it down at once;
   * otherwise more than half of its last minute's calls failing (at least 3) does.
   */
  report(d: Deployment, ok: boolean, upstreamStatus?: number | null): void {
    const now = Date.now();
    d.outcomes.push({ at: now, ok });
    while (d.outcomes.length && d.outcomes[0].at < now - WINDOW_MS) d.outcomes.shift();
    if (ok || this.config.LLM_COOLDOWN_MS === 0) return;
    const failed = d.outcomes.filter((o) => !o.ok).length;
    const auth = upstreamStatus === 401 || upstreamStatus === 403;
    if (auth || (d.outcomes.length >= MIN_CALLS_FOR_COOLDOWN && failed * 2 > d.outcomes.length)) {
      d.cooldownUntil = now + this.config.LLM_COOLDOWN_MS;
      d.outcomes = [];
      const reason = auth ? `upstream answered ${upstreamStatus}` : `${failed} of its recent calls failed`;
      this.logger.warn(`LLM deployment ${d.key} cooled down for ${this.config.LLM_COOLDOWN_MS} ms: ${reason}`);
      this.usage.cooledDown(d.provider.name, d.model, reason);
    }
  }
}
