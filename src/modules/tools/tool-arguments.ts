import { Ajv, type ValidateFunction } from 'ajv';

/**
 * Tool-call arguments checked against the tool's JSON Schema before any node sees them. One
 * Ajv instance; compiled schemas are kept by their text (a node re-registering the same tool
 * costs nothing), at most MAX_CACHED of them.
 */
const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });
const MAX_CACHED = 1000;
const compiled = new Map<string, ValidateFunction>();

function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(schema);
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, v);
  }
  return v;
}

/** Why a schema cannot be used, or null when Ajv compiles it. */
export function schemaProblem(schema: Record<string, unknown>): string | null {
  try {
    validatorFor(schema);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export type ParsedArguments = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** The model's `arguments` string, parsed and checked: the object, or what is wrong with it (for the model to read). */
export function parseToolArguments(raw: string, schema: Record<string, unknown> | null): ParsedArguments {
  let value: unknown;
  try {
    value = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch {
    return { ok: false, error: 'arguments are not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, error: 'arguments must be a JSON object' };
  if (schema) {
    const validate = validatorFor(schema);
    if (!validate(value)) {
      const e = validate.errors?.[0];
      const where = e?.instancePath ? e.instancePath : '(root)';
      return { ok: false, error: `arguments do not match the tool's schema: ${where} ${e?.message ?? 'is invalid'}` };
    }
  }
  return { ok: true, value: value as Record<string, unknown> };
}
