import { AppError } from '../../common/errors.js';
import { normalizeTools, type ToolDefinition } from '../tools/tool-definition.js';

/** A tool a plugin offers, as stored and shown: an OpenAI function definition, normalised. */
export type PluginTool = ToolDefinition;

/** One tool of one plugin, as the LLM gateway reads the tenant's tools. */
export interface OfferedTool extends PluginTool {
  plugin: string;
}

/**
 * Checks and normalises a plugin's `tools` by the same rules as a node's (normalizeTools): the
 * first problem is a VALIDATION_ERROR naming its field (`tools[2].name`, `tools[0].function.parameters`).
 */
export function parseTools(raw: unknown): PluginTool[] {
  if (!Array.isArray(raw)) throw AppError.validation('tools', 'tools must be an array');
  return normalizeTools(raw);
}
