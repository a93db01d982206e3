import type { PluginTool } from './plugin-tools.js';

/** A row of `plugins` as the pg driver returns it (the secret is needed to verify signatures). */
export interface PluginRow {
  id: string;
  name: string;
  secret: string;
  token_hash: string;
  previous_secret: string | null;
  previous_token_hash: string | null;
  rotated_at: Date | null;
  /** The previous secret and token are accepted until then. */
  rotated_until: Date | null;
  created_at: Date;
  tools: PluginTool[];
}

/** Which credentials of a plugin are valid right now (current, plus the previous during the grace). */
export interface PluginCredentials {
  name: string;
  secrets: string[];
  tokenHashes: string[];
}

/**
 * As Apex Bridge spells them (`FileOrganizer`, `SciCalculator`) or in lower case. Stored as
 * written; unique and looked up case-insensitively, so a task or callback path may write
 * `fileorganizer` for `FileOrganizer`.
 */
export const PLUGIN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The holder (`worker_id`) of a task awaiting this plugin. Always built from the name as
 * registered (PluginsService.canonicalName), so one plugin is one holder whatever the caller wrote.
 */
export const pluginHolder = (name: string): string => `plugin:${name}`;
