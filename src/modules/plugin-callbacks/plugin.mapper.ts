import type { IssuedPluginView, PluginView } from './dto/plugin.dto.js';
import type { PluginRow } from './plugin.types.js';
import type { IssuedPlugin } from './plugins.service.js';

/** A plugin without its secrets. */
export function mapPlugin(p: PluginRow): PluginView {
  return {
    name: p.name,
    tools: p.tools,
    created_at: p.created_at.toISOString(),
    rotated_at: p.rotated_at?.toISOString() ?? null,
    previous_valid_until: p.rotated_until?.toISOString() ?? null,
  };
}

/** The one answer that carries the secret and the token. */
export function mapIssuedPlugin({ row, secret, token }: IssuedPlugin): IssuedPluginView {
  return {
    name: row.name,
    tools: row.tools,
    secret,
    token,
    created_at: row.created_at.toISOString(),
    previous_valid_until: row.rotated_until?.toISOString() ?? null,
  };
}
