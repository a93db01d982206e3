import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import { AppConfig, type BootSource, bootSourceOf, CONFIG_KEYS } from '../../config/app-config.js';
import { RuntimeConfigRepository, type RuntimeSettingRow } from './runtime-config.repository.js';
import { DESCRIPTIONS, HOT_KEYS, type HotKey, isHotKey, maskSetting, type SettingValue } from './settings-catalog.js';
import { checkSettings } from './validate-settings.js';

export type SettingSource = BootSource | 'runtime';

/** A setting as /v1/config shows it (value masked when it may hold credentials). */
export interface EffectiveSetting {
  key: string;
  value: SettingValue;
  source: SettingSource;
  hot: boolean;
  description?: string;
  /** When and by whom the runtime value was set (source `runtime` only). */
  updated_at?: string;
  updated_by?: string | null;
}

/** Called with the hot settings whose effective value just changed on this instance. */
export type ConfigChangeListener = (changed: HotKey[]) => void;

interface Applied {
  value: SettingValue;
  updated_at: Date;
  updated_by: string | null;
}

/**
 * Hot runtime configuration. The one AppConfig instance is the truth every reader reads at use
 * time; this service mutates its hot settings in place from the rows of runtime_settings (at
 * boot, after every PATCH/DELETE, and whenever another instance NOTIFYs), and falls back to the
 * value the process booted with (env, file or default) when a row goes away.
 */
@Injectable()
export class RuntimeConfigService implements OnModuleInit {
  private readonly logger = new Logger('RuntimeConfig');
  private readonly bootValues: Record<HotKey, SettingValue>;
  private applied = new Map<HotKey, Applied>();
  private readonly listeners = new Set<{ keys: ReadonlySet<HotKey> | null; fn: ConfigChangeListener }>();
  /** Reloads run one after another, so the last one to finish read the newest rows. */
  private reloads: Promise<void> = Promise.resolve();
  /** Stored rows already reported as unusable (logged once, not at every reload). */
  private readonly reported = new Set<string>();

  constructor(
    private readonly config: AppConfig,
    private readonly repo: RuntimeConfigRepository,
  ) {
    this.bootValues = Object.fromEntries(HOT_KEYS.map((k) => [k, this.read(k)])) as Record<HotKey, SettingValue>;
  }

  /** Before the app serves: the runtime values set earlier (by any instance) apply from the first request. */
  async onModuleInit(): Promise<void> {
    await this.reload();
  }

  list(): EffectiveSetting[] {
    return CONFIG_KEYS.map((k) => this.describe(k));
  }

  get(key: string): EffectiveSetting {
    if (!CONFIG_KEYS.includes(key)) throw AppError.notFound('Setting', key);
    return this.describe(key);
  }

  /**
   * Validates every entry like the boot does, stores all or none, applies them here and tells
   * the other instances. Answers the effective settings of the patched keys.
   */
  async patch(body: unknown, updatedBy: string | null): Promise<EffectiveSetting[]> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new AppError(
        ErrorCode.VALIDATION_ERROR,
        'The body must be a JSON object of settings, e.g. {"LOG_LEVEL": "debug"}',
        {
          field: 'body',
          message: 'must be a JSON object',
        },
      );
    }
    const patch = body as Record<string, unknown>;
    if (Object.keys(patch).length === 0) {
      throw new AppError(ErrorCode.VALIDATION_ERROR, 'No settings given', {
        field: 'body',
        message: 'must name at least one setting',
      });
    }
    const checked = checkSettings(this.config, patch);
    if (!checked.ok) {
      const [first] = checked.problems;
      throw new AppError(ErrorCode.VALIDATION_ERROR, first.message, { ...first, errors: checked.problems });
    }
    await this.repo.upsertMany(checked.values, updatedBy);
    await this.reload();
    return Object.keys(checked.values).map((k) => this.describe(k));
  }

  /** Drops the runtime value of `key` everywhere (back to env/file/default). Idempotent. */
  async reset(key: string): Promise<EffectiveSetting> {
    if (!CONFIG_KEYS.includes(key)) throw AppError.notFound('Setting', key);
    if (await this.repo.delete(key)) await this.reload();
    return this.describe(key);
  }

  /** Reads every stored row and applies it (unusable rows are logged and skipped). */
  reload(): Promise<void> {
    const next = this.reloads.then(() => this.reloadNow());
    this.reloads = next.catch(() => undefined);
    return next;
  }

  /**
   * Subscribes to changes of `keys` (null: any hot setting) on this instance; answers the
   * unsubscribe. For readers that copy a value at construction (timers, cached objects).
   */
  onChange(keys: readonly HotKey[] | null, fn: ConfigChangeListener): () => void {
    const entry = { keys: keys ? new Set(keys) : null, fn };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  private async reloadNow(): Promise<void> {
    const rows = await this.repo.list();
    const next = new Map<HotKey, Applied>();
    for (const row of rows) {
      const value = this.usable(row);
      if (value !== undefined)
        next.set(row.key as HotKey, { value, updated_at: row.updated_at, updated_by: row.updated_by });
    }
    const changed: HotKey[] = [];
    for (const key of HOT_KEYS) {
      const target = next.get(key)?.value ?? this.bootValues[key];
      if (this.read(key) === target) continue;
      (this.config as unknown as Record<string, SettingValue>)[key] = target;
      changed.push(key);
    }
    this.applied = next;
    if (changed.length === 0) return;
    this.logger.log(
      `settings changed: ${changed.map((k) => `${k}=${JSON.stringify(maskSetting(k, this.read(k)))}`).join(', ')}`,
    );
    for (const { keys, fn } of this.listeners) {
      const theirs = keys ? changed.filter((k) => keys.has(k)) : changed;
      if (theirs.length === 0) continue;
      try {
        fn(theirs);
      } catch (e) {
        this.logger.error({ err: e }, `a config change listener failed for ${theirs.join(', ')}`);
      }
    }
  }

  /** The typed value of a stored row, or undefined (logged once) when this release cannot use it. */
  private usable(row: RuntimeSettingRow): SettingValue | undefined {
    const checked = checkSettings(this.config, { [row.key]: row.value });
    if (checked.ok) return checked.values[row.key as HotKey];
    const signature = `${row.key}\u0000${JSON.stringify(row.value)}`;
    if (!this.reported.has(signature)) {
      this.reported.add(signature);
      this.logger.warn(`stored runtime setting skipped: ${checked.problems.map((p) => p.message).join('; ')}`);
    }
    return undefined;
  }

  private read(key: string): SettingValue {
    return ((this.config as unknown as Record<string, SettingValue | undefined>)[key] ?? null) as SettingValue;
  }

  private describe(key: string): EffectiveSetting {
    const hot = isHotKey(key);
    const applied = hot ? this.applied.get(key) : undefined;
    const description = DESCRIPTIONS[key as keyof AppConfig];
    return {
      key,
      value: maskSetting(key, this.read(key)),
      source: applied ? 'runtime' : bootSourceOf(this.config, key),
      hot,
      ...(description ? { description } : {}),
      ...(applied ? { updated_at: applied.updated_at.toISOString(), updated_by: applied.updated_by } : {}),
    };
  }
}
