/** Regular expressions from rule authors, bounded so one rule cannot stall the hub. */

export const MAX_PATTERN_LENGTH = 200;
export const MAX_REGEX_INPUT = 1000;

export class UnsafeRegexError extends Error {}

interface Quantifier {
  length: number;
  /** Can repeat its operand more than once (`*`, `+`, `{n,}`, `{n,m}` with m > 1). */
  repeats: boolean;
  /** Makes an enclosing repeated group dangerous: all but a small bounded `{n,m}` (m <= 10). */
  risky: boolean;
}

function quantifierAt(p: string, i: number): Quantifier | null {
  const c = p[i];
  let q: Quantifier;
  if (c === '*' || c === '+') q = { length: 1, repeats: true, risky: true };
  else if (c === '?') q = { length: 1, repeats: false, risky: true };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (!m) return null;
    const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
    q = { length: m[0].length, repeats: max > 1, risky: max > 10 };
  } else return null;
  if (p[i + q.length] === '?') q.length++; // lazy
  return q;
}

/** Index just past the character class opening at `i`. */
function skipClass(p: string, i: number): number {
  let j = i + 1;
  if (p[j] === '^') j++;
  if (p[j] === ']') j++;
  while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** Length of a group prefix such as `?:`, `?=`, `?<!` or `?<name>` at `i` (just after `(`). */
function groupPrefixLength(p: string, i: number): number {
  if (p[i] !== '?') return 0;
  const named = /^\?<[A-Za-z_$][\w$]*>/.exec(p.slice(i));
  if (named) return named[0].length;
  return /^\?(<=|<!|[:=!])/.exec(p.slice(i))?.[0].length ?? 0;
}

/**
 * A conservative look for catastrophic backtracking: a repeated group that itself holds a
 * quantifier or an alternation (`(a+)+`, `(a*)*`, `(a|a)*`, `(.*x){5}`), and backreferences.
 * Small bounded repeats inside are allowed (`(\.\d{1,3}){3}`).
 * It rejects some harmless patterns (`(ab|cd)+`); authors can rewrite those with a class.
 */
export function hasNestedQuantifier(p: string): boolean {
  const open: { risky: boolean }[] = [];
  const markParent = (): void => {
    if (open.length) open[open.length - 1].risky = true;
  };
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === '\\') {
      if (/[1-9k]/.test(p[i + 1] ?? '')) return true;
      i += 2;
    } else if (c === '[') {
      i = skipClass(p, i);
    } else if (c === '(') {
      open.push({ risky: false });
      i += 1 + groupPrefixLength(p, i + 1);
      continue;
    } else if (c === ')') {
      const group = open.pop() ?? { risky: false };
      i++;
      const q = quantifierAt(p, i);
      if (q && q.repeats && group.risky) return true;
      if (q?.risky || group.risky) markParent();
      if (q) i += q.length;
      continue;
    } else if (c === '|') {
      markParent();
      i++;
    } else {
      i++;
    }
    const q = quantifierAt(p, i);
    if (q) {
      if (q.risky) markParent();
      i += q.length;
    }
  }
  return false;
}

/** Compiles a rule's pattern or throws UnsafeRegexError saying why not. */
export function compileSafeRegex(pattern: string): RegExp {
  if (typeof pattern !== 'string') throw new UnsafeRegexError('pattern must be a string');
  if (pattern.length > MAX_PATTERN_LENGTH)
    throw new UnsafeRegexError(`pattern longer than ${MAX_PATTERN_LENGTH} characters`);
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new UnsafeRegexError(`invalid regular expression: ${(e as Error).message}`);
  }
  if (hasNestedQuantifier(pattern)) {
    throw new UnsafeRegexError(
      'pattern has nested quantifiers, alternation under a repeat, or backreferences (catastrophic backtracking)',
    );
  }
  return re;
}

/** Tests at most the first MAX_REGEX_INPUT characters of the input. */
export function safeTest(re: RegExp, input: string): boolean {
  return re.test(input.length > MAX_REGEX_INPUT ? input.slice(0, MAX_REGEX_INPUT) : input);
}
