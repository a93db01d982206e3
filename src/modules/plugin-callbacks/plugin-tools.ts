import { AppError } from '../../common/errors.js';

/** A tool a plugin offers, as stored and shown: an OpenAI function definition, normalised. */
export interface PluginTool {
  name: string;
  description: string | null;
  /** A JSON Schema of the arguments (`type: "object"`), or null when the tool takes none. */
  parameters: Record<string, unknown> | null;
}

/** One tool of one plugin, as the LLM gateway reads the tenant's tools. */
export interface OfferedTool extends PluginTool {
  plugin: string;
}

/** OpenAI's rule for a function name. */
export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
/** OpenAI's limit of tools per request: a plugin declaring more could never be offered whole. */
export const MAX_TOOLS = 128;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks and normalises a plugin's `tools`: each `{name, description?, parameters?}` or
 * `{type: "function", function: {…}}`. The first problem is a VALIDATION_ERROR naming its field
 * (`tools[2].name`, `tools[0].function.parameters`). Other keys (`strict`, …) are ignored.
 */
export function parseTools(raw: unknown): PluginTool[] {
  if (!Array.isArray(raw)) throw AppError.validation('tools', 'tools must be an array');
  if (raw.length > MAX_TOOLS) throw AppError.validation('tools', `at most ${MAX_TOOLS} tools`);
  const seen = new Set<string>();
  return raw.map((item, i) => {
    let at = `tools[${i}]`;
    if (!isObject(item)) throw AppError.validation(at, 'a tool must be an object');
    let def: Record<string, unknown> = item;
    if (item.type !== undefined || item.function !== undefined) {
      if (item.type !== 'function') throw AppError.validation(`${at}.type`, 'type must be "function"');
      if (!isObject(item.function)) throw AppError.validation(`${at}.function`, 'function must be an object');
      def = item.function;
      at = `${at}.function`;
    }
    const { name, description, parameters } = def;
    if (typeof name !== 'string' || !TOOL_NAME_PATTERN.test(name))
      throw AppError.validation(`${at}.name`, `name must match ${TOOL_NAME_PATTERN.source}`);
    if (seen.has(name)) throw AppError.validation(`${at}.name`, `duplicate tool name: ${name}`);
    seen.add(name);
    if (description !== undefined && description !== null && typeof description !== 'string')
      throw AppError.validation(`${at}.description`, 'description must be a string');
    if (parameters !== undefined && parameters !== null) {
      if (!isObject(parameters))
        throw AppError.validation(`${at}.parameters`, 'parameters must be a JSON Schema object');
      if (parameters.type !== 'object')
        throw AppError.validation(`${at}.parameters`, 'parameters must be a JSON Schema with type "object"');
    }
    return {
      name,
      description: typeof description === 'string' ? description : null,
      parameters: isObject(parameters) ? parameters : null,
    };
  });
}
