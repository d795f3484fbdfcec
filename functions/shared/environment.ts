import type { z } from 'zod';

/**
 * A function's settings from its environment; a wrong value fails the cold start with every variable's name and the
 * reason, in one line an operator can read in the log.
 */
export function settingsFromEnvironment<S extends z.ZodType>(schema: S, environment: Record<string, string | undefined>, what: string): z.output<S> {
  const parsed = schema.safeParse(environment);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ');
  throw new Error(`${what} configuration is invalid: ${problems}`);
}

/**
 * One environment variable's value (undefined when unset) as a setting; throws an Error whose message says what the
 * value must be, to follow the variable's name. Plain functions rather than zod, so that reading settings needs no
 * zod: the evaluator and change capture read theirs with these and carry none (about 100 KB of a bundle).
 */
export type VariableReader<T> = (value: string | undefined) => T;

/** The settings `readers` read, by variable name; fails as `settingsFromEnvironment` does, with every wrong variable. */
export function variablesFromEnvironment<R extends Record<string, VariableReader<unknown>>>(
  readers: R,
  environment: Record<string, string | undefined>,
  what: string,
): { [K in keyof R]: ReturnType<R[K]> } {
  const settings: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, read] of Object.entries(readers)) {
    try {
      settings[name] = read(environment[name]);
    } catch (error) {
      problems.push(`${name} ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`${what} configuration is invalid: ${problems.join('; ')}`);
  return settings as { [K in keyof R]: ReturnType<R[K]> };
}

/** A variable that must be set and not empty; `what` says what it names. */
export function requiredText(what: string): VariableReader<string> {
  return (value) => {
    if (value === undefined || value === '') throw new Error(`is required: ${what}`);
    return value;
  };
}

/** A variable that may be unset, for `fallback`, but not empty. */
export function textOr(fallback: string): VariableReader<string> {
  return (value) => {
    if (value === '') throw new Error('must not be empty');
    return value ?? fallback;
  };
}

/** A whole number of at least `min`, read as `Number` reads it (`" 8 "` is 8); `fallback` when unset. */
export function integerFrom(min: number, fallback: number): VariableReader<number>;
export function integerFrom(min: number, fallback?: undefined): VariableReader<number | undefined>;
export function integerFrom(min: number, fallback?: number): VariableReader<number | undefined> {
  return (value) => {
    if (value === undefined) return fallback;
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < min) throw new Error(`must be a whole number of at least ${min}, not ${JSON.stringify(value)}`);
    return number;
  };
}
