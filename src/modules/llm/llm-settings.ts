/**
 * The gateway's configuration: OpenAI-compatible upstream providers, model aliases and
 * fallbacks. Set by env (LLM_PROVIDERS, LLM_ALIASES, LLM_FALLBACKS, LLM_DEFAULT_MODEL, JSON
 * where structured) and hot through PUT /v1/config/llm (stored as those same settings).
 * Parsed here once, with errors naming the field.
 */
export interface LlmProvider {
  name: string;
  /** `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`, …: requests go to `${base_url}/chat/completions`. */
  base_url: string;
  api_key?: string;
  models: string[];
  /** Share of traffic among the deployments of a model (default 1). */
  weight: number;
  timeout_ms?: number;
  /** Calls in flight at once to this provider (further ones wait for another deployment or fail over). */
  max_concurrency?: number;
}

export interface LlmSettings {
  providers: LlmProvider[];
  /** `gpt-4` → `gpt-4o`: a name clients use for a served model. */
  aliases: Record<string, string>;
  /** `model` → models tried in order when all of `model`'s deployments failed before content. */
  fallbacks: Record<string, string[]>;
  /** Used when a request names no model. */
  default_model?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$/;
const fail = (field: string, message: string): { ok: false; field: string; message: string } => ({
  ok: false,
  field,
  message,
});
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function json(raw: unknown, field: string): Parsed<unknown> {
  if (typeof raw !== 'string') return { ok: true, value: raw };
  if (raw.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return fail(field, `${field} is not valid JSON`);
  }
}

export function parseProviders(raw: unknown, field = 'providers'): Parsed<LlmProvider[]> {
  const j = json(raw, field);
  if (!j.ok) return j;
  if (j.value === undefined || j.value === null) return { ok: true, value: [] };
  if (!Array.isArray(j.value)) return fail(field, `${field} must be an array of providers`);
  if (j.value.length > 100) return fail(field, `${field} has more than 100 providers`);
  const out: LlmProvider[] = [];
  const names = new Set<string>();
  for (const [i, p] of j.value.entries()) {
    const at = `${field}[${i}]`;
    if (!isObject(p)) return fail(at, `${at} must be an object`);
    if (typeof p.name !== 'string' || !NAME.test(p.name))
      return fail(`${at}.name`, `${at}.name must be 1-128 letters, digits or _.:/@-`);
    if (names.has(p.name)) return fail(`${at}.name`, `provider name ${p.name} is used twice`);
    names.add(p.name);
    let url: URL | undefined;
    try {
      url = typeof p.base_url === 'string' ? new URL(p.base_url) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      return fail(`${at}.base_url`, `${at}.base_url must be an http(s) URL`);
    if (p.api_key !== undefined && p.api_key !== null && (typeof p.api_key !== 'string' || p.api_key.length > 4096)) {
      return fail(`${at}.api_key`, `${at}.api_key must be a string`);
    }
    if (
      !Array.isArray(p.models) ||
      p.models.length === 0 ||
      p.models.length > 1000 ||
      !p.models.every((m) => typeof m === 'string' && NAME.test(m))
    ) {
      return fail(`${at}.models`, `${at}.models must be a non-empty array of model names`);
    }
    for (const [key, min, max] of [
      ['weight', 0, 1e6],
      ['timeout_ms', 100, 3_600_000],
      ['max_concurrency', 1, 100_000],
    ] as const) {
      const v = p[key];
      if (
        v !== undefined &&
        v !== null &&
        (typeof v !== 'number' ||
          !Number.isFinite(v) ||
          v < min ||
          v > max ||
          (key !== 'weight' && !Number.isInteger(v)))
      ) {
        return fail(`${at}.${key}`, `${at}.${key} must be a number from ${min} to ${max}`);
      }
    }
    out.push({
      name: p.name,
      base_url: p.base_url as string,
      ...(typeof p.api_key === 'string' ? { api_key: p.api_key } : {}),
      models: [...new Set(p.models as string[])],
      weight: typeof p.weight === 'number' ? p.weight : 1,
      ...(typeof p.timeout_ms === 'number' ? { timeout_ms: p.timeout_ms } : {}),
      ...(typeof p.max_concurrency === 'number' ? { max_concurrency: p.max_concurrency } : {}),
    });
  }
  return { ok: true, value: out };
}

export function parseAliases(raw: unknown, field = 'aliases'): Parsed<Record<string, string>> {
  const j = json(raw, field);
  if (!j.ok) return j;
  if (j.value === undefined || j.value === null) return { ok: true, value: {} };
  if (!isObject(j.value)) return fail(field, `${field} must be an object {alias: model}`);
  for (const [k, v] of Object.entries(j.value)) {
    if (!NAME.test(k) || typeof v !== 'string' || !NAME.test(v))
      return fail(`${field}.${k}`, `${field}.${k} must map a model name to a model name`);
  }
  return { ok: true, value: j.value as Record<string, string> };
}

export function parseFallbacks(raw: unknown, field = 'fallbacks'): Parsed<Record<string, string[]>> {
  const j = json(raw, field);
  if (!j.ok) return j;
  if (j.value === undefined || j.value === null) return { ok: true, value: {} };
  if (!isObject(j.value)) return fail(field, `${field} must be an object {model: [fallback models]}`);
  for (const [k, v] of Object.entries(j.value)) {
    if (!NAME.test(k) || !Array.isArray(v) || v.length > 20 || !v.every((m) => typeof m === 'string' && NAME.test(m))) {
      return fail(`${field}.${k}`, `${field}.${k} must be an array of model names`);
    }
  }
  return { ok: true, value: j.value as Record<string, string[]> };
}

/** The whole configuration, checked for consistency (aliases and fallbacks name served models). */
export function parseLlmSettings(s: {
  providers: unknown;
  aliases?: unknown;
  fallbacks?: unknown;
  default_model?: unknown;
}): Parsed<LlmSettings> {
  const providers = parseProviders(s.providers);
  if (!providers.ok) return providers;
  const aliases = parseAliases(s.aliases);
  if (!aliases.ok) return aliases;
  const fallbacks = parseFallbacks(s.fallbacks);
  if (!fallbacks.ok) return fallbacks;
  const served = new Set(providers.value.flatMap((p) => p.models));
  const known = (m: string): boolean =>
    served.has(m) || (aliases.value[m] !== undefined && served.has(aliases.value[m]));
  for (const [alias, target] of Object.entries(aliases.value)) {
    if (!served.has(target))
      return fail(`aliases.${alias}`, `alias ${alias} names ${target}, which no provider serves`);
  }
  for (const [model, list] of Object.entries(fallbacks.value)) {
    for (const m of list)
      if (!known(m)) return fail(`fallbacks.${model}`, `fallback ${m} of ${model} is not a served model or alias`);
  }
  const dm = s.default_model;
  if (dm !== undefined && dm !== null && dm !== '') {
    if (typeof dm !== 'string' || !known(dm))
      return fail('default_model', `default_model must be a served model or alias`);
  }
  return {
    ok: true,
    value: {
      providers: providers.value,
      aliases: aliases.value,
      fallbacks: fallbacks.value,
      ...(typeof dm === 'string' && dm !== '' ? { default_model: dm } : {}),
    },
  };
}

/** Providers as shown to admins: keys masked. */
export const maskProviders = (providers: LlmProvider[]): (Omit<LlmProvider, 'api_key'> & { api_key?: string })[] =>
  providers.map((p) => ({ ...p, ...(p.api_key ? { api_key: `${p.api_key.slice(0, 3)}****` } : {}) }));
