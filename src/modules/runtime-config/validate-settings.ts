import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { AppConfig, CONFIG_KEYS } from '../../config/app-config.js';
import { HOT_KEYS, type HotKey, isHotKey, type SettingValue } from './settings-catalog.js';

export interface SettingProblem {
  field: string;
  message: string;
  /** Set when the setting exists but is read at boot only. */
  restart_required?: true;
}

export type CheckedSettings =
  { ok: true; values: Partial<Record<HotKey, SettingValue>> } | { ok: false; problems: SettingProblem[] };

const KNOWN = new Set(CONFIG_KEYS);

/** The settings of `config` as a plain object (what loadConfig would be given). */
function plainOf(config: AppConfig): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = (config as unknown as Record<string, unknown>)[key];
    if (value !== undefined) plain[key] = value;
  }
  return plain;
}

/**
 * Checks a change of settings exactly as the boot does: a candidate config made of the current
 * effective values plus `patch` goes through AppConfig's class-transformer/class-validator
 * rules (so "120" is accepted for an integer, as from the environment, and so is 120). Unknown
 * and restart-only keys are problems too. Answers the typed values, or every problem.
 */
export function checkSettings(current: AppConfig, patch: Record<string, unknown>): CheckedSettings {
  const problems: SettingProblem[] = [];
  for (const key of Object.keys(patch)) {
    if (!KNOWN.has(key)) problems.push({ field: key, message: `Unknown setting: ${key}` });
    else if (!isHotKey(key)) {
      problems.push({
        field: key,
        message: `${key} needs a restart: it is read at boot only (hot settings: ${HOT_KEYS.join(', ')})`,
        restart_required: true,
      });
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  const candidate = plainToInstance(AppConfig, { ...plainOf(current), ...patch }, { exposeDefaultValues: true });
  for (const e of validateSync(candidate, { whitelist: false })) {
    if (!(e.property in patch)) continue;
    const why = Object.values(e.constraints ?? {}).join('; ') || 'invalid value';
    problems.push({ field: e.property, message: `Invalid value for ${e.property}: ${why}` });
  }
  if (problems.length > 0) return { ok: false, problems };
  const values: Partial<Record<HotKey, SettingValue>> = {};
  for (const key of Object.keys(patch) as HotKey[]) values[key] = candidate[key] as SettingValue;
  return { ok: true, values };
}
