import type { Condition } from './schema';

/**
 * Whether a value meets a condition of the rules file (an event signal's `where`, a trait signal's `is`, the
 * conversion). Pure, but for two caches keyed by the condition object, which lives as long as its ruleset: the
 * compiled regular expressions, and the values of the lists the conditions name, which rulesetOf attaches.
 */

type ValueCondition = Exclude<Condition, { domain: unknown }>;
export type ListCondition = Extract<Condition, { in_list: string }> | Extract<Condition, { not_in_list: string }>;

export function conditionHolds(condition: Condition, value: unknown): boolean {
  if (typeof condition !== 'object') return value === condition;
  if ('domain' in condition) {
    const domain = emailDomain(value);
    return domain === undefined ? isExistsFalse(condition.domain) : conditionHolds(condition.domain, domain);
  }
  if ('equals' in condition) return value === condition.equals;
  if ('not_equals' in condition) return value !== condition.not_equals;
  if ('in' in condition) return condition.in.includes(value as string | number | boolean);
  if ('not_in' in condition) return !condition.not_in.includes(value as string | number | boolean);
  if ('exists' in condition) return (value !== undefined && value !== null) === condition.exists;
  if ('contains' in condition) {
    if (typeof value === 'string') return value.includes(condition.contains);
    return Array.isArray(value) && value.includes(condition.contains);
  }
  if ('starts_with' in condition) return typeof value === 'string' && [condition.starts_with].flat().some((prefix) => value.toLowerCase().startsWith(prefix.toLowerCase()));
  if ('ends_with' in condition) return typeof value === 'string' && [condition.ends_with].flat().some((suffix) => value.toLowerCase().endsWith(suffix.toLowerCase()));
  if ('matches' in condition) return typeof value === 'string' && regexOf(condition).test(value);
  if ('in_list' in condition) return typeof value === 'string' && listOf(condition).has(value.toLowerCase());
  if ('not_in_list' in condition) return typeof value === 'string' && !listOf(condition).has(value.toLowerCase());
  const number = numericValue(value);
  if (number === undefined) return false;
  if ('gt' in condition) return number > condition.gt;
  if ('gte' in condition) return number >= condition.gte;
  if ('lt' in condition) return number < condition.lt;
  return number <= condition.lte;
}

/**
 * Whether a trait value meets a trait signal's condition (its `is`) or a conversion's. A trait not given (absent or
 * null) meets only `exists: false`: it is neither equal nor unequal to a value, nor in or out of a list, so a negative
 * condition (`not_equals`, `not_in`) does not hold for a user whose traits are not known yet (`plan: { not_in: [free] }`
 * is no "paying already" for an anonymous visitor). A `where` on an event's property reads `conditionHolds` itself.
 */
export function traitHolds(condition: Condition, value: unknown): boolean {
  if (value !== undefined && value !== null) return conditionHolds(condition, value);
  if (typeof condition !== 'object') return false;
  return 'domain' in condition ? isExistsFalse(condition.domain) : isExistsFalse(condition);
}

/**
 * A number, or a string holding one in plain decimal notation ("42", "-3.5"): SDKs and CRMs often send numbers as
 * strings, and `employees: "42"` should compare as 42. Anything else ("", "42 seats", "0x2A", "Infinity") is no number.
 */
function numericValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

/** The domain of an e-mail address: after the last @, lowercased; undefined for anything else. */
export function emailDomain(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const domain = value.slice(value.lastIndexOf('@') + 1).trim().toLowerCase();
  return value.includes('@') && domain !== '' ? domain : undefined;
}

const isExistsFalse = (condition: ValueCondition) => typeof condition === 'object' && 'exists' in condition && !condition.exists;

/**
 * Flags that change what matches; `g` and `y` are refused, as they make `test` remember where it stopped, and `d`
 * and `v` add nothing a rule needs.
 */
const regexFlags = /^[imsu]*$/;

/** A `matches` operand as a RegExp: `source`, or `/source/flags`. Throws SyntaxError with the reason. */
export function parseRegex(operand: string): RegExp {
  const withFlags = /^\/(.*)\/([a-z]*)$/s.exec(operand);
  if (withFlags === null) return new RegExp(operand);
  const [, source, flags] = withFlags as unknown as [string, string, string];
  if (!regexFlags.test(flags)) throw new SyntaxError(`flags may be i, m, s and u, not "${flags}"`);
  return new RegExp(source, flags);
}

/** The reason a `matches` operand is no regular expression, or undefined when it is one. */
export function regexProblem(operand: string): string | undefined {
  try {
    parseRegex(operand);
    return undefined;
  } catch (error) {
    // V8 repeats the expression before the reason: "Invalid regular expression: /(/: Unterminated group".
    return (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  }
}

const regexes = new WeakMap<object, RegExp>();

function regexOf(condition: { matches: string }): RegExp {
  let regex = regexes.get(condition);
  if (regex === undefined) regexes.set(condition, (regex = parseRegex(condition.matches)));
  return regex;
}

const lists = new WeakMap<object, ReadonlySet<string>>();

/** Gives a list condition its list's values (lowercased); rulesetOf does, for every list condition of its rules. */
export function attachList(condition: ListCondition, values: ReadonlySet<string>) {
  lists.set(condition, values);
}

function listOf(condition: ListCondition): ReadonlySet<string> {
  const values = lists.get(condition);
  if (values === undefined) throw new Error(`the list "${'in_list' in condition ? condition.in_list : condition.not_in_list}" was not attached: list conditions are evaluated through their ruleset (rulesetOf)`);
  return values;
}

/** The values of a list file: one a line, trimmed; blank lines and lines starting with # are skipped. */
export function listFileValues(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
