/**
 * The routing rule engine: pure functions over rules and a request or task context.
 * Used by the REST API (validation, evaluate), the dispatcher (task.*) and the WebSocket proxy.
 */
import { STRATEGIES, type Strategy } from './pick-target.js';
import { compileSafeRegex, safeTest, UnsafeRegexError } from './safe-regex.js';

export {
  compileSafeRegex,
  hasNestedQuantifier,
  MAX_PATTERN_LENGTH,
  MAX_REGEX_INPUT,
  safeTest,
  UnsafeRegexError,
} from './safe-regex.js';
export {
  type Candidate,
  pickTarget,
  type PickOptions,
  RoundRobinCursor,
  stableHash,
  STRATEGIES,
  type Strategy,
} from './pick-target.js';

export const OPERATORS = ['equals', 'not_equals', 'contains', 'regex', 'in', 'exists'] as const;
export type Operator = (typeof OPERATORS)[number];

export interface RuleCondition {
  /** `header.<name>` (case-insensitive), `query.<name>`, `client_ip`, `task.<field>[.<sub>…]` */
  field: string;
  operator: Operator;
  value: unknown;
}

export interface RoutingRule {
  id: string;
  name: string;
  priority: number;
  enabled: boolean;
  conditions: RuleCondition[];
  target_strategy: Strategy;
  target_tags: string[];
  target_service: string | null;
  created_at?: Date | string;
}

export interface RoutingContext {
  headers?: Record<string, unknown>;
  query?: Record<string, unknown>;
  client_ip?: string;
  task?: Record<string, unknown>;
}

export const MAX_CONDITIONS = 50;
export const MAX_IN_VALUES = 100;

const FIELD_PATTERN =
  /^(header\.[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}|query\.[A-Za-z0-9_.[\]-]{1,100}|client_ip|task(\.[A-Za-z0-9_-]{1,64}){1,8})$/;
const PRIORITY_ALIASES: Record<string, string> = { low: '0', medium: '1', high: '2', urgent: '3' };

export function isValidField(field: unknown): field is string {
  return typeof field === 'string' && FIELD_PATTERN.test(field);
}

/** A problem in one rule input, named by its path (`conditions[2].value`). */
export class RuleValidationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const isScalar = (v: unknown): v is string | number | boolean =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

function checkValue(op: Operator, value: unknown, path: string): void {
  const fail = (message: string): never => {
    throw new RuleValidationError(`${path}.value`, message);
  };
  switch (op) {
    case 'equals':
    case 'not_equals':
    case 'contains':
      if (!isScalar(value)) fail(`${op} needs a string, number or boolean`);
      if (typeof value === 'string' && value.length > 1000) fail('value longer than 1000 characters');
      return;
    case 'regex':
      if (typeof value !== 'string' || value === '') fail('regex needs a non-empty pattern string');
      try {
        compileSafeRegex(value as string);
      } catch (e) {
        if (e instanceof UnsafeRegexError) fail(e.message);
        throw e;
      }
      return;
    case 'in':
      if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IN_VALUES || !value.every(isScalar)) {
        fail(`in needs an array of 1 to ${MAX_IN_VALUES} strings, numbers or booleans`);
      }
      return;
    case 'exists':
      if (typeof value !== 'boolean') fail('exists needs true or false');
  }
}

/** Checks conditions as they come from a client; throws RuleValidationError naming the first bad one. */
export function validateConditions(input: unknown): RuleCondition[] {
  if (!Array.isArray(input)) throw new RuleValidationError('conditions', 'conditions must be an array');
  if (input.length > MAX_CONDITIONS)
    throw new RuleValidationError('conditions', `at most ${MAX_CONDITIONS} conditions`);
  return input.map((c: unknown, i) => {
    const path = `conditions[${i}]`;
    if (typeof c !== 'object' || c === null || Array.isArray(c))
      throw new RuleValidationError(path, 'condition must be an object');
    const extra = Object.keys(c).find((k) => !['field', 'operator', 'value'].includes(k));
    if (extra) throw new RuleValidationError(`${path}.${extra}`, `property ${extra} should not exist`);
    const { field, operator, value } = c as Record<string, unknown>;
    if (!isValidField(field)) {
      throw new RuleValidationError(
        `${path}.field`,
        'field must be header.<name>, query.<name>, client_ip or task.<field>[.<sub>]',
      );
    }
    if (!OPERATORS.includes(operator as Operator)) {
      throw new RuleValidationError(`${path}.operator`, `operator must be one of ${OPERATORS.join(', ')}`);
    }
    if (!('value' in c)) throw new RuleValidationError(`${path}.value`, 'value is required');
    checkValue(operator as Operator, value, path);
    return { field, operator: operator as Operator, value };
  });
}

export function isStrategy(s: unknown): s is Strategy {
  return STRATEGIES.includes(s as Strategy);
}

/** The value a field names in the context, or undefined when absent. */
export function resolveField(field: string, ctx: RoutingContext): unknown {
  if (field === 'client_ip') return ctx.client_ip;
  const dot = field.indexOf('.');
  const scope = field.slice(0, dot);
  const rest = field.slice(dot + 1);
  if (scope === 'header') {
    const name = rest.toLowerCase();
    const key = Object.keys(ctx.headers ?? {}).find((k) => k.toLowerCase() === name);
    return key === undefined ? undefined : ctx.headers?.[key];
  }
  if (scope === 'query') return ctx.query && Object.hasOwn(ctx.query, rest) ? ctx.query[rest] : undefined;
  if (scope === 'task') {
    let at: unknown = ctx.task;
    for (const part of rest.split('.')) {
      if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined;
      at = (at as Record<string, unknown>)[part];
    }
    return at;
  }
  return undefined;
}

/** Compared as strings; `task.priority` accepts names (`high`) and numbers (2) alike. */
function canonical(field: string, v: unknown): string {
  const s = String(v);
  return field === 'task.priority' ? (PRIORITY_ALIASES[s.toLowerCase()] ?? s) : s;
}

const regexCache = new Map<string, RegExp>();
function cachedRegex(pattern: string): RegExp | null {
  let re = regexCache.get(pattern);
  if (!re) {
    try {
      re = compileSafeRegex(pattern);
    } catch {
      return null; // stored before a stricter check: never matches
    }
    if (regexCache.size >= 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

export function matchCondition(c: RuleCondition, ctx: RoutingContext): boolean {
  const actual = resolveField(c.field, ctx);
  const present = actual !== undefined && actual !== null;
  if (c.operator === 'exists') return present === c.value;
  if (!present) return c.operator === 'not_equals';
  const items: unknown[] = Array.isArray(actual) ? actual : [actual];
  const scalars = items.filter(isScalar).map((v) => canonical(c.field, v));
  switch (c.operator) {
    case 'equals':
      return !Array.isArray(actual) && scalars.length === 1 && scalars[0] === canonical(c.field, c.value);
    case 'not_equals':
      return Array.isArray(actual) || scalars.length !== 1 || scalars[0] !== canonical(c.field, c.value);
    case 'contains': {
      const needle = canonical(c.field, c.value);
      return Array.isArray(actual) ? scalars.includes(needle) : scalars.some((s) => s.includes(needle));
    }
    case 'regex': {
      const re = typeof c.value === 'string' ? cachedRegex(c.value) : null;
      return re !== null && items.filter(isScalar).some((v) => safeTest(re, String(v)));
    }
    case 'in': {
      const wanted = new Set((Array.isArray(c.value) ? c.value : []).map((v) => canonical(c.field, v)));
      return scalars.some((s) => wanted.has(s));
    }
    default:
      return false;
  }
}

const time = (d: Date | string | undefined): number => (d === undefined ? 0 : new Date(d).getTime() || 0);

/** Highest priority first; ties go to the rule created first, then the lower id. */
export function compareRules(a: RoutingRule, b: RoutingRule): number {
  return b.priority - a.priority || time(a.created_at) - time(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The highest-priority enabled rule whose conditions all match (no conditions: always), or null. */
export function matchRule<R extends RoutingRule>(rules: readonly R[], ctx: RoutingContext): R | null {
  const ordered = rules.filter((r) => r.enabled).sort(compareRules);
  return ordered.find((r) => r.conditions.every((c) => matchCondition(c, ctx))) ?? null;
}
