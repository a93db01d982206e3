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
}

/** Which credentials of a plugin are valid right now (current, plus the previous during the grace). */
export interface PluginCredentials {
  name: string;
  secrets: string[];
  tokenHashes: string[];
}

export const PLUGIN_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** The holder (`worker_id`) of a task awaiting this plugin. */
export const pluginHolder = (name: string): string => `plugin:${name}`;
