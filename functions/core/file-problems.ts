import type { z } from 'zod';
import { didYouMean } from './did-you-mean';
import { formatPath } from './field-path';

/**
 * Problems of a config or rules file, and zod's issues turned into them, apart from any file format: the YAML side
 * is ./yaml-file.ts. The evaluator's bundle validates its rules from JSON (./rules/ruleset.ts) and carries no YAML
 * parser, about 110 KB.
 */

export interface FileProblem {
  /** Path inside the file, e.g. `signals.activated.all[1]`. */
  path: string;
  /** 1-based line, when the path can be found (YAML, and JSON, which is YAML too). */
  line?: number;
  message: string;
}

export function formatProblem(problem: FileProblem): string {
  return `${problem.line !== undefined ? `line ${problem.line}: ` : ''}${problem.path || '(file)'}: ${problem.message}`;
}

/** The problems in the order of the file (those of the whole file first), as an editor goes through them. */
export function describeProblems(source: string, problems: readonly FileProblem[]): string {
  const inFileOrder = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${inFileOrder.map((p) => `  ${formatProblem(p)}`).join('\n')}`;
}

/** A file with problems: every one of them, with its path and line, in the message. */
export class FileProblemsError extends Error {
  constructor(
    readonly source: string,
    readonly problems: FileProblem[],
  ) {
    super(describeProblems(source, problems));
  }
}

/** A problem at a path of the file, with its line when the format knows lines. */
export type ProblemAt = (path: readonly PropertyKey[], message: string) => FileProblem;

/** A problem at a path, without a line (a file read as plain JSON). */
export const problemWithoutLine: ProblemAt = (path, message) => ({ path: formatPath(path), message });

/**
 * Validates a parsed file with a zod schema, turning every issue into a problem at its path. `issuePath` lets a
 * caller move an issue to a better place (e.g. from an implied key to its object).
 */
export function validateFile<S extends z.ZodType>(
  value: unknown,
  schema: S,
  problemAt: ProblemAt,
  issuePath: (path: PropertyKey[]) => PropertyKey[] = (path) => path,
): { ok: true; data: z.output<S> } | { ok: false; problems: FileProblem[] } {
  // The keys each object with an unknown key allows, by the object's path: zod's issue names the unknown keys only,
  // while its error map still sees the object's schema.
  const allowedKeys = new Map<string, string[]>();
  const parsed = schema.safeParse(value, {
    reportInput: true,
    error: (issue) => {
      // The object's shape, read without z.ZodObject: the Lambda bundles' zod carries only the builders they call.
      const shape = issue.code === 'unrecognized_keys' ? (issue.inst as { shape?: unknown } | undefined)?.shape : undefined;
      // The error map sees no path at the top of the file (zod sets it later): that is the empty path.
      if (shape !== null && typeof shape === 'object') allowedKeys.set(JSON.stringify(issue.path ?? []), Object.keys(shape));
      return undefined;
    },
  });
  if (parsed.success) return { ok: true, data: parsed.data };
  // zod finalizes its issues, calling the error map, when they are first read: before the keys are looked up.
  const issues = parsed.error.issues;
  return {
    ok: false,
    problems: issues.flatMap((issue) =>
      // One problem per misspelt key, on that key's own line.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => problemAt([...issue.path, key], `unknown key "${key}"${didYouMean(key, allowedKeys.get(JSON.stringify(issue.path)) ?? [])}`))
        : [problemAt(issuePath(issue.path), describe(issue))],
    ),
  };
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.code === 'too_small' || issue.code === 'too_big') return describeBound(issue);
  if (issue.code === 'invalid_value') return describeOption(issue);
  if (issue.code === 'invalid_format' && /^Invalid/.test(issue.message)) return formats[issue.format] ?? issue.message;
  if (issue.code !== 'invalid_type') return issue.message;
  if (issue.input === undefined) return 'is required';
  // zod's own words name its types ("Invalid input: expected int, received number"); these name what the file needs.
  // A schema's own message says more than either.
  if (!issue.message.startsWith('Invalid input')) return issue.message;
  if (issue.path.length === 0 && issue.input === null) return 'the file is empty';
  if (issue.expected === 'int') return 'must be a whole number';
  const shape = (yamlShapes as Partial<Record<string, string>>)[issue.expected];
  if (shape !== undefined) return `must be ${shape}, not ${shapeOf(issue.input)}`;
  return issue.message;
}

/**
 * A bound in the file's words (`must be at least 1, not 0`, `must list at least one item`) rather than zod's ("Too
 * small: expected number to be >=1"). A schema's own message is kept.
 */
function describeBound(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  if (!/^(Too small|Too big|Invalid input)/.test(issue.message) || issue.exact) return issue.message;
  const small = issue.code === 'too_small';
  const limit = Number(small ? issue.minimum : issue.maximum);
  const inclusive = issue.inclusive ?? true;
  switch (issue.origin) {
    case 'number':
    case 'int': {
      const bound = small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
      return `must be ${bound} ${limit}${typeof issue.input === 'number' ? `, not ${issue.input}` : ''}`;
    }
    case 'string':
      return small && limit === 1 ? 'must not be empty' : `must be ${small ? 'at least' : 'at most'} ${limit} characters long`;
    case 'array':
    case 'set':
      return small && limit === 1 ? 'must list at least one item' : `must list ${small ? 'at least' : 'at most'} ${limit} items`;
    default:
      return issue.message;
  }
}

/**
 * A value none of the schema's options (`must be one of user, account, not "acount"; did you mean "account"?`) rather
 * than zod's ('Invalid option: expected one of "user"|"account"'). A schema's own message is kept.
 */
function describeOption(issue: z.core.$ZodIssueInvalidValue): string {
  if (!/^Invalid (option|input)/.test(issue.message)) return issue.message;
  const options = issue.values.map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
  const given = issue.input === undefined ? '' : `, not ${JSON.stringify(issue.input)}`;
  const suggestion = typeof issue.input === 'string' ? didYouMean(issue.input, options) : '';
  return `must be ${options.length === 1 ? options[0] : `one of ${options.join(', ')}`}${given}${suggestion}`;
}

/** What zod's string formats need, in the file's words ("Invalid email address" names no field's need). */
const formats: Partial<Record<string, string>> = { email: 'must be an e-mail address', url: 'must be a URL' };

const yamlShapes = {
  array: 'a list (a "- " line per item, or [a, b])',
  object: 'a map (a "key: value" line per entry, or { key: value })',
  record: 'a map (a "key: value" line per entry, or { key: value })',
  number: 'a number',
  string: 'text (in quotes when it reads as a number or true/false)',
  boolean: 'true or false',
};

const shapeOf = (value: unknown): string =>
  value === null ? 'empty' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a map' : `${typeof value === 'string' ? 'the text' : 'the value'} ${JSON.stringify(value)}`;
