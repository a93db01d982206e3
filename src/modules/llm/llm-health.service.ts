import { Injectable } from '@nestjs/common';
import { LlmRouter } from './llm-router.js';

export interface ProvidersHealth {
  healthy: boolean;
  response_time: number;
  last_checked: string;
  providers: { name: string; healthy: boolean; response_time: number; error?: string }[];
}

const PROBE_TIMEOUT_MS = 2000;
/** /health is polled often; providers are asked at most this often. */
const CACHE_MS = 10_000;

/**
 * `components.external_services` of /health (seed 002): each LLM provider's `GET /models`,
 * probed at most every 10 s. Healthy when at least one provider answers (the router fails
 * over among them).
 */
@Injectable()
export class LlmHealth {
  private cached?: { at: number; report: ProvidersHealth };
  private inFlight?: Promise<ProvidersHealth>;

  constructor(private readonly router: LlmRouter) {}

  /** Undefined when no provider is configured. */
  async report(): Promise<ProvidersHealth | undefined> {
    const providers = this.router.current.providers;
    if (providers.length === 0) return undefined;
    if (this.cached && Date.now() - this.cached.at < CACHE_MS) return this.cached.report;
    this.inFlight ??= this.probe().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async probe(): Promise<ProvidersHealth> {
    const started = performance.now();
    const results = await Promise.all(
      this.router.current.providers.map(async (p) => {
        const t0 = performance.now();
        try {
          const res = await fetch(`${p.base_url.replace(/\/+$/, '')}/models`, {
            headers: p.api_key ? { authorization: `Bearer ${p.api_key}` } : {},
            signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
          });
          await res.arrayBuffer();
          return {
            name: p.name,
            healthy: res.ok,
            response_time: round(performance.now() - t0),
            ...(res.ok ? {} : { error: `status ${res.status}` }),
          };
        } catch (e) {
          return {
            name: p.name,
            healthy: false,
            response_time: round(performance.now() - t0),
            error: (e as Error).message,
          };
        }
      }),
    );
    const up = results.filter((r) => r.healthy);
    const report: ProvidersHealth = {
      healthy: up.length > 0,
      response_time: up.length ? Math.min(...up.map((r) => r.response_time)) : round(performance.now() - started),
      last_checked: new Date().toISOString(),
      providers: results,
    };
    this.cached = { at: Date.now(), report };
    return report;
  }
}

const round = (n: number): number => Math.round(n * 10) / 10;
