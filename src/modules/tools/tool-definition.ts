import { AppError } from '../../common/errors.js';
import { schemaProblem } from './tool-arguments.js';

/** A tool as the hub knows it: an OpenAI function definition. */
export interface ToolDefinition {
  name: string;
  description: string | null;
  /** A JSON Schema for the arguments object (`type: "object"`); null = any object. */
  parameters: Record<string, unknown> | null;
}

/** OpenAI's own rule for function names. */
export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
export const MAX_TOOLS = 128;
const MAX_DESCRIPTION = 4096;
const MAX_SCHEMA_BYTES = 64 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks and normalises declared tools (`node_register` `data.tools`, a plugin's `tools`):
 * each `{name, description?, parameters?}` or OpenAI's `{type: "function", function: {…}}`.
 * Throws a validation AppError naming the offending field (`<field>[i].name`).
 */
export function normalizeTools(raw: unknown, field = 'tools'): ToolDefinition[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw AppError.validation(field, `${field} must be an array of function definitions`);
  if (raw.length > MAX_TOOLS) throw AppError.validation(field, `${field} may declare at most ${MAX_TOOLS} tools`);
  const seen = new Set<string>();
  return raw.map((item, i) => {
    let at = `${field}[${i}]`;
    if (!isObject(item)) throw AppError.validation(at, `${at} must be an object {name, description?, parameters?}`);
    let fn: Record<string, unknown> = item;
    if (item.type !== undefined || item.function !== undefined) {
      if (item.type !== 'function') throw AppError.validation(`${at}.type`, `${at}.type must be "function"`);
      if (!isObject(item.function)) throw AppError.validation(`${at}.function`, `${at}.function must be an object`);
      fn = item.function;
      at = `${at}.function`;
    }
    if (typeof fn.name !== 'string' || !TOOL_NAME_PATTERN.test(fn.name))
      throw AppError.validation(`${at}.name`, `${at}.name must match ${TOOL_NAME_PATTERN.source}`);
    if (seen.has(fn.name)) throw AppError.validation(`${at}.name`, `${at}.name repeats the tool ${fn.name}`);
    seen.add(fn.name);
    const description = fn.description ?? null;
    if (description !== null && (typeof description !== 'string' || description.length > MAX_DESCRIPTION))
      throw AppError.validation(
        `${at}.description`,
        `${at}.description must be a string of at most ${MAX_DESCRIPTION} characters`,
      );
    const parameters = fn.parameters ?? null;
    if (parameters !== null) {
      if (!isObject(parameters) || parameters.type !== 'object')
        throw AppError.validation(`${at}.parameters`, `${at}.parameters must be a JSON Schema with type "object"`);
      if (JSON.stringify(parameters).length > MAX_SCHEMA_BYTES)
        throw AppError.validation(`${at}.parameters`, `${at}.parameters is larger than 64 KB`);
      const problem = schemaProblem(parameters);
      if (problem)
        throw AppError.validation(`${at}.parameters`, `${at}.parameters is not a usable JSON Schema: ${problem}`);
    }
    return { name: fn.name, description, parameters };
  });
}

/** The tag a node offering a tool carries, and a task calling that tool requires. */
export const toolTag = (name: string): string => `tool:${name}`;

/** The OpenAI `tools` entry for a definition. */
export function asOpenAiTool(t: ToolDefinition): { type: 'function'; function: Record<string, unknown> } {
  return {
    type: 'function',
    function: {
      name: t.name,
      ...(t.description !== null ? { description: t.description } : {}),
      ...(t.parameters !== null ? { parameters: t.parameters } : {}),
    },
  };
}
