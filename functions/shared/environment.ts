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
