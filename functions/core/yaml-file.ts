import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { formatPath } from './field-path';

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

export function describeProblems(source: string, problems: readonly FileProblem[]): string {
  return `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`;
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

type Parsed<T> =
  | { ok: true; data: T; problemAt: (path: readonly PropertyKey[], message: string) => FileProblem }
  | { ok: false; problems: FileProblem[] };

/**
 * Parses a YAML or JSON config file and validates it with a zod schema, turning every syntax error and every
 * schema issue into a problem with its path and line, so the person editing the file can go straight to it.
 * `issuePath` lets a caller move an issue to a better place (e.g. from an implied key to its object).
 */
export function parseYamlFile<S extends z.ZodType>(
  text: string,
  schema: S,
  issuePath: (path: PropertyKey[], document: Document) => PropertyKey[] = (path) => path,
): Parsed<z.output<S>> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (document.errors.length > 0) {
    return { ok: false, problems: document.errors.map((error) => ({ path: '', line: lineCounter.linePos(error.pos[0]).line, message: error.message.split('\n')[0]! })) };
  }
  const lineOf = (path: readonly PropertyKey[]) => {
    // The deepest node of the path that exists: a missing key is reported on the line of its parent object.
    for (let depth = path.length; depth >= 0; depth--) {
      // A key's own line: the value of a nested map or list starts on the line after its key.
      const parent = depth > 0 ? (document.getIn(path.slice(0, depth - 1) as unknown[], true) as Node | undefined) : undefined;
      const pair = isMap(parent) ? parent.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[depth - 1])) : undefined;
      const keyStart = pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      if (keyStart !== undefined) return lineCounter.linePos(keyStart).line;
      const node = document.getIn(path.slice(0, depth) as unknown[], true) as Node | undefined;
      const start = node && (isMap(node) || isSeq(node) || 'range' in node) ? node.range?.[0] : undefined;
      if (start !== undefined) return lineCounter.linePos(start).line;
    }
    return undefined;
  };
  const problemAt = (path: readonly PropertyKey[], message: string): FileProblem => {
    const line = lineOf(path);
    return { path: formatPath(path), ...(line !== undefined ? { line } : {}), message };
  };

  const parsed = schema.safeParse(document.toJS(), { reportInput: true });
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.flatMap((issue) =>
        // One problem per misspelt key, on that key's own line.
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => problemAt([...issue.path, key], `unknown key "${key}"`))
          : [problemAt(issuePath(issue.path, document), describe(issue))],
      ),
    };
  }
  return { ok: true, data: parsed.data, problemAt };
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required';
  return issue.message;
}
